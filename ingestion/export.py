"""Export: the star schema -> processed zone, as parquet.

    <processed>/dim_<name>/dim_<name>.parquet                          the current snapshot
    <processed>/fact_<name>/last_updated_date=YYYY-MM-DD/records_from_<first id>-<n>.parquet
    <processed>/fact_<name>/_export_state.json                          last record id exported

A dim is written beside its old snapshot and then moved over it, so a reader sees the old file or
the new one, never half of one. A fact run exports the records after the last exported id. Its
files are named by the first id they hold, so a retry after a crash rewrites the same names and
never adds a second copy of a row. The state also names the fact table's generation (its OID):
a full refresh renumbers record ids, and then the fact is exported again from the start.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import sqlalchemy as sa
from dlt.common.storages import FilesystemConfiguration, fsspec_from_config
from dlt.sources.sql_database import sql_table

from ingestion.config import sqlalchemy_url
from ingestion.lake import bucket_url

MARTS_SCHEMA = "public"
STATE_FILE = "_export_state.json"
PARTITION_COLUMN = "last_updated_date"


@dataclass(frozen=True)
class StarTable:
    name: str
    oid: int  # changes when dbt replaces the table (a full refresh), not when it appends
    record_id: str | None  # facts only: their increasing surrogate key

    @property
    def is_fact(self) -> bool:
        return self.record_id is not None


def star_tables(engine: sa.Engine) -> list[StarTable]:
    """The tables to export: dim_/fact_ and deleted_rows. A fact's key is its `*_record_id`."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select t.table_name, "
                "  (quote_ident(t.table_schema) || '.' || quote_ident(t.table_name))"
                "::regclass::oid::bigint, "
                "  min(c.column_name) filter ("
                "  where c.column_name like '%%\\_record\\_id') "
                "from information_schema.tables t "
                "join information_schema.columns c using (table_schema, table_name) "
                "where t.table_schema = :schema and t.table_type = 'BASE TABLE' "
                "  and (t.table_name like 'dim\\_%%' or t.table_name like 'fact\\_%%' "
                "       or t.table_name = 'deleted_rows') "
                "group by t.table_schema, t.table_name order by t.table_name"
            ),
            {"schema": MARTS_SCHEMA},
        ).all()
    return [StarTable(name, oid, record_id) for name, oid, record_id in rows]


@dataclass(frozen=True)
class ExportState:
    last_record_id: int
    table_oid: int


class ParquetZone:
    """A folder or bucket prefix of parquet tables: the processed zone, the lake's quarantine."""

    def __init__(self, url: str) -> None:
        self.fs, self.root = fsspec_from_config(FilesystemConfiguration(bucket_url(url)))
        self.root = self.root.rstrip("/")

    def path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def export_state(self, table: str) -> ExportState | None:
        path = self.path(table, STATE_FILE)
        if not self.fs.exists(path):
            return None
        return ExportState(**json.loads(self.fs.cat_file(path)))

    def record_exported(self, table: str, state: ExportState) -> None:
        self._write_atomically(self.path(table, STATE_FILE), json.dumps(asdict(state)).encode())

    def clear(self, table: str) -> None:
        if self.fs.exists(self.path(table)):
            self.fs.rm(self.path(table), recursive=True)

    def replace_snapshot(self, table: str, data: pa.Table | None) -> None:
        """The dim's current rows; an empty dim has no snapshot file."""
        path = self.path(table, f"{table}.parquet")
        if data is None:
            if self.fs.exists(path):
                self.fs.rm(path)
            return
        sink = pa.BufferOutputStream()
        pq.write_table(data, sink, compression="zstd")
        self._write_atomically(path, sink.getvalue().to_pybytes())

    def append_partitioned(self, table: str, data: pa.Table, first_id: int) -> None:
        ds.write_dataset(
            data,
            self.path(table),
            filesystem=self._arrow_filesystem(),
            format="parquet",
            file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
            partitioning=ds.partitioning(
                pa.schema([data.schema.field(PARTITION_COLUMN)]), flavor="hive"
            ),
            basename_template=f"records_from_{first_id}-{{i}}.parquet",
            existing_data_behavior="overwrite_or_ignore",
        )

    def _arrow_filesystem(self) -> pafs.FileSystem:
        """pyarrow's own filesystem for local folders: ten times faster than the fsspec bridge
        when writing hundreds of date partitions (measured: 0.4 s against 3.5 s)."""
        if "file" in self.fs.protocol:
            return pafs.LocalFileSystem()
        return pafs.PyFileSystem(pafs.FSSpecHandler(self.fs))

    def _write_atomically(self, path: str, payload: bytes) -> None:
        """Write beside the target, then move over it: one object PUT on S3, a rename locally."""
        folder, name = path.rsplit("/", 1)
        temporary = f"{folder}/.{name}.writing"  # hidden: dataset readers skip dot files
        self.fs.makedirs(folder, exist_ok=True)
        self.fs.pipe_file(temporary, payload)
        self.fs.mv(temporary, path)


def _read(engine: sa.Engine, table: StarTable, after: int = 0) -> Iterator[pa.Table]:
    def only_new(query: sa.Select, sa_table: sa.Table) -> sa.Select:
        return query.where(sa_table.c[table.record_id] > after).order_by(
            sa_table.c[table.record_id]
        )

    yield from sql_table(
        credentials=engine,
        table=table.name,
        schema=MARTS_SCHEMA,
        backend="pyarrow",
        reflection_level="full_with_precision",
        chunk_size=100_000,
        query_adapter_callback=only_new if table.is_fact else None,
    )


def export(warehouse_url: str, processed_url: str) -> dict[str, int]:
    """Export every star table. Returns rows written per table."""
    zone = ParquetZone(processed_url)
    written: dict[str, int] = {}
    engine = sa.create_engine(sqlalchemy_url(warehouse_url))  # one pool for every table
    try:
        for table in star_tables(engine):
            if table.is_fact:
                written[table.name] = _export_fact(engine, zone, table)
            else:
                chunks = list(_read(engine, table))
                data = pa.concat_tables(chunks) if chunks else None
                zone.replace_snapshot(table.name, data)
                written[table.name] = data.num_rows if data is not None else 0
    finally:
        engine.dispose()
    return written


def _export_fact(engine: sa.Engine, zone: ParquetZone, table: StarTable) -> int:
    assert table.record_id is not None
    state = zone.export_state(table.name)
    if state is not None and state.table_oid != table.oid:
        zone.clear(table.name)  # a rebuilt fact: its record ids no longer match the files
        state = None
    after = state.last_record_id if state else 0
    rows, last = 0, after
    for chunk in _read(engine, table, after):
        first_id = chunk.column(table.record_id)[0].as_py()
        zone.append_partitioned(table.name, chunk, first_id)
        rows += chunk.num_rows
        last = chunk.column(table.record_id)[-1].as_py()
    new_state = ExportState(last_record_id=last, table_oid=table.oid)
    if new_state != state:
        zone.record_exported(table.name, new_state)
    return rows
