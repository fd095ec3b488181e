"""Export: the star schema -> processed zone, as parquet (zstd).

    <processed>/dim_<name>/part-NNNNN.parquet      the current rows: keys N * 100,000 and up
    <processed>/dim_<name>/_export_state.json       where those files stand
    <processed>/fact_<name>/last_updated_date=YYYY-MM-DD/records.parquet   one file per day
    <processed>/fact_<name>/_export_state.json                          last record id exported

Every file is replaced atomically (storage.write_atomically), so a reader sees the old file or
the new one, never half of one. A fact run exports the records after the last exported id: it
merges them into their day's file, which stays one file however many runs touch that day.
Merging skips record ids the file already holds, so a retry after a crash never adds a second
copy of a row. The state also names the fact table's generation (its OID): a full refresh
renumbers record ids, and then the fact is exported again from the start.

A dim's rows are split into part files by ranges of its key (a dim whose key is not an integer
is one part). A dim that dbt rebuilt (a new table) is exported whole, unless its content (an md5
computed in Postgres) is what the files already hold. One that dbt updated in place (the
incremental dim_transaction and deleted_rows) exports only the rows written since its last
export, found by Postgres' own change marker (the row's xmin), and merges them by primary key
into the part files of their keys; the other parts are not read or written: a run costs what
changed, not what the dim holds. A merge cannot remove rows, so when the merged parts would hold
another number of rows than the table (a row deleted in place), the dim is exported whole.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
from psycopg2 import sql

from ingestion.common.copy_out import copy_out, table_schema
from ingestion.common.database import shared_engine
from ingestion.lake.storage import (
    arrow_filesystem,
    filesystem,
    read_json,
    write_json_atomically,
    write_parquet_atomically,
)

MARTS_SCHEMA = "public"
STATE_FILE = "_export_state.json"
PARTITION_COLUMN = "last_updated_date"
PARTITION_FILE = "records.parquet"
# Day files written at once: on S3 each is a round trip, so many overlap; a local folder is
# bound by the cores, and more threads than cores only contend in the kernel (a first export at
# scale 1 on 2 cores: 2.3 s with 2 threads, 3.0 s with 8)
PARALLEL_UPLOADS = 8
PARALLEL_LOCAL_WRITES = min(os.cpu_count() or 1, PARALLEL_UPLOADS)
# a dim's part file N holds the keys [N * PART_KEYS, (N + 1) * PART_KEYS): scale 100's
# dim_transaction is 16 files, and a run's new transactions touch the last one or two
PART_KEYS = 100_000


@dataclass(frozen=True)
class StarTable:
    name: str
    oid: int  # changes when dbt replaces the table (a full refresh), not when it appends
    key: str  # the primary key's first column: a merge by it is exact for deleted_rows too, which
    # rewrites all its rows when it changes (and a row gone in place is caught by the counts)
    record_id: str | None  # facts only: their increasing surrogate key

    @property
    def is_fact(self) -> bool:
        return self.record_id is not None


def star_tables(engine: sa.Engine) -> list[StarTable]:
    """The tables to export: dim_/fact_ and deleted_rows. A fact's key is its `*_record_id`."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select c.relname, c.oid::bigint, "
                "  (select a.attname from pg_index i join pg_attribute a "
                "   on a.attrelid = i.indrelid and a.attnum = i.indkey[0] "
                "   where i.indrelid = c.oid and i.indisprimary), "
                "  (select min(a.attname) from pg_attribute a where a.attrelid = c.oid "
                "   and a.attnum > 0 and not a.attisdropped "
                "   and a.attname like '%%\\_record\\_id') "
                "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = :schema and c.relkind in ('r', 'p') "
                "  and (c.relname like 'dim\\_%%' or c.relname like 'fact\\_%%' "
                "       or c.relname = 'deleted_rows') "
                "order by c.relname"
            ),
            {"schema": MARTS_SCHEMA},
        ).all()
    return [StarTable(name, oid, key, record_id) for name, oid, key, record_id in rows]


@dataclass(frozen=True)
class ExportState:
    """A fact's: the last record exported. A dim's: rows written by transactions from
    `changed_from_xid` on are not in its files yet."""

    table_oid: int
    last_record_id: int = 0
    changed_from_xid: int = 0
    fingerprint: str = ""  # a dim's content, when it was exported whole
    part_rows: dict[str, int] = field(default_factory=dict)  # a dim's rows per part file


class ParquetZone:
    """A folder or bucket prefix of parquet tables: the processed zone, the lake's quarantine."""

    def __init__(self, url: str) -> None:
        self.fs, self.root = filesystem(url)

    def path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    @property
    def parallel_writes(self) -> int:
        return PARALLEL_LOCAL_WRITES if "file" in self.fs.protocol else PARALLEL_UPLOADS

    def export_state(self, table: str) -> ExportState | None:
        state = read_json(self.fs, self.path(table, STATE_FILE))
        return ExportState(**state) if state else None

    def record_exported(self, table: str, state: ExportState) -> None:
        write_json_atomically(self.fs, self.path(table, STATE_FILE), asdict(state))

    def clear(self, table: str) -> None:
        if self.fs.exists(self.path(table)):
            self.fs.rm(self.path(table), recursive=True)

    def replace_snapshot(self, table: str, data: pa.Table | None) -> None:
        """A table's rows as one file (the lake's quarantine); no rows, no file."""
        path = self.path(table, f"{table}.parquet")
        if data is None:
            if self.fs.exists(path):
                self.fs.rm(path)
            return
        self._write_parquet(path, data)

    def dim_parts(self, table: str) -> set[str]:
        """The names of a dim's part files (and of any other parquet file there), from one
        listing."""
        paths = self.fs.find(self.path(table))
        return {path.rsplit("/", 1)[-1] for path in paths if path.endswith(".parquet")}

    def replace_dim(
        self, table: str, data: pa.Table | None, key: str, held: set[str]
    ) -> dict[str, int]:
        """Write a dim's rows whole, a file per key range, then remove the `held` files
        (dim_parts) that hold no range of it now. Returns rows per part file."""
        parts = key_ranges(data, key) if data is not None else {}
        self.write_dim_parts(table, parts)
        for name in sorted(held - parts.keys()):
            self.fs.rm(self.path(table, name))
        return {name: rows.num_rows for name, rows in parts.items()}

    def merged_dim_parts(
        self, table: str, changed: pa.Table, key: str, held: set[str]
    ) -> dict[str, pa.Table]:
        """The part files `changed` falls in, with its rows' newer state replacing theirs and
        new keys added (not written). `held`: dim_parts."""
        merged = {}
        for name, rows in key_ranges(changed, key).items():
            if name in held:
                part = pq.read_table(self.path(table, name), filesystem=arrow_filesystem(self.fs))
                kept = part.filter(pc.invert(pc.is_in(part[key], rows[key])))
                rows = pa.concat_tables([kept, rows.cast(part.schema)]).sort_by(key)
            merged[name] = rows
        return merged

    def write_dim_parts(self, table: str, parts: dict[str, pa.Table]) -> None:
        with ThreadPoolExecutor(max_workers=self.parallel_writes) as pool:
            futures = [
                pool.submit(self._write_parquet, self.path(table, name), rows)
                for name, rows in parts.items()
            ]
            _wait_for(futures)

    def day_files(self, table: str) -> set[str]:
        """The paths of a fact's day files, from one listing."""
        return {path for path in self.fs.find(self.path(table)) if path.endswith(PARTITION_FILE)}

    def merge_into_days(
        self,
        table: str,
        data: pa.Table,
        record_id: str,
        pool: ThreadPoolExecutor,
        day_files: set[str] | None = None,
    ) -> list[Future[None]]:
        """Add fact records to their day's file (hive partition by PARTITION_COLUMN). Days are
        independent files, so they are written in parallel on `pool` (on S3 each is a round
        trip); the caller waits for the futures before merging more records into the same days.
        `day_files`, if given, is `day_files(table)`, kept up to date here; without it, each
        day's file is looked up (on S3 a HEAD and a LIST request), which suits a few days."""
        data = data.sort_by(PARTITION_COLUMN)  # then each day is one slice, not a filter
        per_day = pc.value_counts(data.column(PARTITION_COLUMN))  # in order of appearance
        counts = per_day.field("counts").to_pylist()
        starts = list(itertools.accumulate(counts, initial=0))[:-1]
        slices = dict(
            zip(per_day.field("values").to_pylist(), zip(starts, counts, strict=True), strict=True)
        )

        def merge(day: date) -> None:
            path = self.path(table, f"{PARTITION_COLUMN}={day.isoformat()}", PARTITION_FILE)
            new = data.slice(*slices[day]).drop([PARTITION_COLUMN])
            written = path in day_files if day_files is not None else self.fs.exists(path)
            if written:
                held = pq.read_table(path, filesystem=arrow_filesystem(self.fs))
                new = new.filter(pc.invert(pc.is_in(new[record_id], held[record_id])))
                new = pa.concat_tables([held, new.cast(held.schema)])
            self._write_parquet(path, new.sort_by(record_id))
            if day_files is not None:
                day_files.add(path)

        return [pool.submit(merge, day) for day in slices]

    def _write_parquet(self, path: str, data: pa.Table) -> None:
        write_parquet_atomically(self.fs, path, data)


def key_ranges(data: pa.Table, key: str) -> dict[str, pa.Table]:
    """A dim's rows by the part file of their key, each part in key order."""
    data = data.sort_by(key)
    if not pa.types.is_integer(data.schema.field(key).type):
        return {_part_name(0): data} if data.num_rows else {}
    numbers = pc.divide(data[key], PART_KEYS)  # integer division: keys are not negative
    return {
        _part_name(number): data.filter(pc.equal(numbers, number))
        for number in pc.unique(numbers).to_pylist()
    }


def _part_name(number: int) -> str:
    return f"part-{number:05d}.parquet"


def _read(
    engine: sa.Engine, table: StarTable, after: int = 0, changed_from_xid: int | None = None
) -> Iterator[pa.Table]:
    """A fact's records after `after`, in record order (by day when after is 0); a dim's rows,
    or only those written by transactions from `changed_from_xid` on (age(xmin): how many
    transactions ago). COPY takes no bind parameters: the two numbers are int literals."""
    name = sql.Identifier(MARTS_SCHEMA, table.name)
    if table.is_fact:
        record_id = sql.Identifier(table.record_id)
        # a first export goes day by day, so each day file is written about once instead
        # of once per chunk (scale 100: ~750 days in each of ~20 chunks)
        order = sql.Identifier(PARTITION_COLUMN) if after == 0 else record_id
        query = sql.SQL("select * from {} where {} > {} order by {}").format(
            name, record_id, sql.Literal(int(after)), order
        )
    elif changed_from_xid is not None:
        query = sql.SQL("select * from {} where age(xmin) <= txid_current() - {}").format(
            name, sql.Literal(int(changed_from_xid))
        )
    else:
        query = sql.SQL("select * from {}").format(name)
    connection = engine.raw_connection()
    try:
        yield from copy_out(connection, query, table_schema(connection, MARTS_SCHEMA, table.name))
    except BaseException:
        connection.invalidate()  # perhaps stopped mid-COPY: never back into the pool
        raise
    connection.close()  # back into the pool, its transaction rolled back


def export(warehouse_url: str, processed_url: str) -> dict[str, int]:
    """Export every star table. Returns rows written per table."""
    zone = ParquetZone(processed_url)
    written: dict[str, int] = {}
    engine = shared_engine(warehouse_url)  # one pool for every table, and every run
    with engine.connect() as conn:  # every transaction before this one has ended
        horizon = conn.execute(sa.text("select pg_snapshot_xmin(pg_current_snapshot())::text"))
        changed_from = int(horizon.scalar_one())
    for table in star_tables(engine):
        if table.is_fact:
            written[table.name] = _export_fact(engine, zone, table)
        else:
            written[table.name] = _export_dim(engine, zone, table, changed_from)
    return written


def _export_fact(engine: sa.Engine, zone: ParquetZone, table: StarTable) -> int:
    if table.record_id is None:
        raise TypeError(f"{table.name} is not a fact: it has no record id")
    state = zone.export_state(table.name)
    if state is not None and state.table_oid != table.oid:
        zone.clear(table.name)  # a rebuilt fact: its record ids no longer match the files
        state = None
    after = state.last_record_id if state else 0
    rows, last = 0, after
    # a first export writes every day: one listing beats looking up each day's file (moto's
    # S3 at scale 0.05: 11 s against 26 s); later runs touch a few days
    day_files = zone.day_files(table.name) if after == 0 else None
    with ThreadPoolExecutor(max_workers=zone.parallel_writes) as pool:
        writing: list[Future[None]] = []
        for chunk in _read(engine, table, after):  # read while the chunk before is written
            _wait_for(writing)  # a day may be in two chunks: one merge into it at a time
            writing = zone.merge_into_days(table.name, chunk, table.record_id, pool, day_files)
            rows += chunk.num_rows
            last = max(last, pc.max(chunk.column(table.record_id)).as_py())
        _wait_for(writing)
    new_state = ExportState(table_oid=table.oid, last_record_id=last)
    if new_state != state:
        zone.record_exported(table.name, new_state)
    return rows


def _wait_for(futures: list[Future[None]]) -> None:
    for future in futures:
        future.result()  # raises the merge's error, if any


def _export_dim(engine: sa.Engine, zone: ParquetZone, table: StarTable, changed_from: int) -> int:
    """`changed_from`: the oldest transaction that may still have been running when the export
    began; the rows it or later ones wrote are read again next time."""
    state = zone.export_state(table.name)
    held = zone.dim_parts(table.name)
    # the state stands only for the files it names (not, say, a file of an older layout)
    if state is not None and held == state.part_rows.keys() and state.table_oid == table.oid:
        chunks = list(_read(engine, table, changed_from_xid=state.changed_from_xid))
        if not chunks:
            if sum(state.part_rows.values()) == _count(engine, table):
                return 0  # nothing written since: the files and their state stand
        else:
            changed = pa.concat_tables(chunks)
            merged = zone.merged_dim_parts(table.name, changed, table.key, held)
            part_rows = state.part_rows | {name: rows.num_rows for name, rows in merged.items()}
            if sum(part_rows.values()) == _count(engine, table):
                zone.write_dim_parts(table.name, merged)
                # the fingerprint was of the rows before the merge
                exported = replace(
                    state, changed_from_xid=changed_from, fingerprint="", part_rows=part_rows
                )
                zone.record_exported(table.name, exported)
                return changed.num_rows
        # rows deleted in place (deleted_rows drops an id restored in totesys): merging cannot
        # follow them, the counts differ, and the dim is exported whole
    # replaced by dbt (most dims are rebuilt on every build): exported whole, unless its
    # content is what the files hold. A first export has nothing to compare: no
    # fingerprint (scale 100: 2 s for dim_transaction), so the next rebuild is written once more
    fingerprint = _fingerprint(engine, table) if state is not None else ""
    if state is not None and held == state.part_rows.keys() and state.fingerprint == fingerprint:
        return 0
    chunks = list(_read(engine, table))
    part_rows = zone.replace_dim(
        table.name, pa.concat_tables(chunks) if chunks else None, table.key, held
    )
    zone.record_exported(
        table.name,
        ExportState(
            table_oid=table.oid,
            changed_from_xid=changed_from,
            fingerprint=fingerprint,
            part_rows=part_rows,
        ),
    )
    return sum(part_rows.values())


def _count(engine: sa.Engine, table: StarTable) -> int:
    quote = engine.dialect.identifier_preparer.quote_identifier
    query = sa.text(f"select count(*) from {quote(MARTS_SCHEMA)}.{quote(table.name)}")  # noqa: S608 (quoted)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _fingerprint(engine: sa.Engine, table: StarTable) -> str:
    """The md5 of a table's rows in a fixed order: computed in Postgres, no rows leave it."""
    quote = engine.dialect.identifier_preparer.quote_identifier
    # S608: both identifiers are quoted by the dialect
    query = sa.text(
        "select md5(coalesce(string_agg(t::text, chr(10) order by t::text), '')) "  # noqa: S608
        f"from {quote(MARTS_SCHEMA)}.{quote(table.name)} as t"
    )
    with engine.connect() as conn:
        return str(conn.execute(query).scalar_one())
