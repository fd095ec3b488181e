"""The landing zone's layout, shared by the writer (extract), the compactor and the reader (load).

    <lake>/totesys/<table>/load_date=YYYY-MM-DD/<load_id>.<file_id>.parquet    a load's own file
    <lake>/totesys/<table>/load_date=YYYY-MM-DD/compacted.parquet   loads merged (see compaction)
    <lake>/totesys/_dlt_pipeline_state/totes_extract__<load_id>__<hash>.jsonl   cursors
    <lake>/totesys/_dlt_loads/sql_database__<load_id>.jsonl                      dlt's marker
    <lake>/totesys/_manifests/<load_id>.json        what a load holds, for people (see Manifest)

Every row carries the id of the lake load that wrote it (`_lake_load_id`), so it stays
traceable to its load after compaction.

When all of a load's data files are in place, dlt writes its state file (the new cursors), then
its `_dlt_loads` entry; totes then writes the manifest. Any one of them marks the load complete:
a crash between two must not leave data behind whose cursor has already moved. A load with none
is incomplete, and no reader may use it. The date partition is derived from the load id (a unix
timestamp), so a reader finds a load's rows by path alone, without listing the table's history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingestion.extract import TABLES
from ingestion.extract.source_keys import KEYS_TABLE
from ingestion.lake.storage import filesystem, write_json_atomically

DATASET = "totesys"
LAYOUT = "{table_name}/load_date={load_date}/{load_id}.{file_id}.{ext}"
LAKE_LOAD_COLUMN = "_lake_load_id"
COMPACTED = "compacted.parquet"
COMPACTED_LOADS_KEY = b"totes.lake_load_ids"  # parquet metadata: the loads a compacted file holds
MANIFESTS = "_manifests"
COMPLETION_MARKERS = ("_dlt_loads", "_dlt_pipeline_state", MANIFESTS)
LAKE_TABLES = (*TABLES, KEYS_TABLE)  # the source's tables, and its key snapshots
BATCH_ROWS = 100_000


def load_date(load_id: str) -> str:
    return datetime.fromtimestamp(float(load_id), UTC).date().isoformat()


def load_date_placeholder(
    schema_name: str, table_name: str, load_id: str, file_id: str, ext: str
) -> str:
    """dlt layout placeholder: the load's UTC date."""
    return load_date(load_id)


def load_id_of(path: str) -> str:
    """`<load_id>.<file_id>.parquet` -> load id (a load id is `<seconds>.<fraction>`)."""
    return ".".join(Path(path).name.split(".")[:2])


@dataclass
class DayFolder:
    """One table's files for one load date: per-load files, and maybe one compacted file."""

    path: str
    compacted: str | None = None
    compacted_loads: frozenset[str] = frozenset()  # the loads the compacted file holds
    load_files: dict[str, list[str]] = field(default_factory=dict)  # load id -> its own files

    @property
    def file_count(self) -> int:
        return sum(map(len, self.load_files.values())) + (self.compacted is not None)


class Lake:
    """Access to the landing zone of one dataset."""

    def __init__(self, url: str, dataset: str = DATASET) -> None:
        self.fs, root = filesystem(url)
        self.root = f"{root}/{dataset}"

    def completed_loads(self, after: str | None = None) -> list[str]:
        """Ids of the completed loads newer than `after`, oldest first."""
        ids: set[str] = set()
        for marker in COMPLETION_MARKERS:
            folder = f"{self.root}/{marker}"
            if self.fs.exists(folder):
                # <load_id>.json, <name>__<load_id>.jsonl or <pipeline>__<load_id>__<hash>.jsonl
                names = (Path(path).stem for path in self.fs.ls(folder, detail=False))
                ids.update(name.split("__")[1] if "__" in name else name for name in names)
        return sorted((i for i in ids if after is None or float(i) > float(after)), key=float)

    def day_folder(self, table: str, day: str) -> DayFolder:
        folder = DayFolder(f"{self.root}/{table}/load_date={day}")
        if not self.fs.exists(folder.path):
            return folder
        for path in sorted(self.fs.ls(folder.path, detail=False)):
            name = Path(path).name
            if name == COMPACTED:
                folder.compacted = path
                folder.compacted_loads = self._compacted_loads(path)
            elif name.endswith(".parquet") and not name.startswith("."):
                folder.load_files.setdefault(load_id_of(name), []).append(path)
        return folder

    def _compacted_loads(self, path: str) -> frozenset[str]:
        with self.fs.open(path, "rb") as handle:
            metadata = pq.ParquetFile(handle).schema_arrow.metadata or {}
        return frozenset(json.loads(metadata[COMPACTED_LOADS_KEY]))

    def read(self, table: str, load_ids: Iterable[str]) -> Iterator[pa.Table]:
        """Stream the rows the given loads wrote to `table`, from wherever they are now: the
        loads' own files, or the compacted file of their day."""
        by_day: dict[str, set[str]] = {}
        for load_id in load_ids:
            by_day.setdefault(load_date(load_id), set()).add(load_id)
        for day, wanted in sorted(by_day.items()):
            folder = self.day_folder(table, day)
            if folder.compacted and wanted & folder.compacted_loads:
                yield from self.read_file(folder.compacted, only=wanted)
            for load_id in sorted(wanted - folder.compacted_loads, key=float):
                for path in folder.load_files.get(load_id, []):
                    yield from self.read_file(path)

    def read_file(self, path: str, only: set[str] | None = None) -> Iterator[pa.Table]:
        """A parquet file in batches; with `only`, just the rows of those loads."""
        wanted = pa.array(sorted(only), pa.string()) if only is not None else None
        with self.fs.open(path, "rb") as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=BATCH_ROWS):
                rows = pa.Table.from_batches([batch])
                if wanted is not None:
                    rows = rows.filter(pc.is_in(rows[LAKE_LOAD_COLUMN], value_set=wanted))
                if rows.num_rows:
                    yield rows

    def write_missing_manifests(self, completed_loads: list[str], contract_version: int) -> None:
        """Describe each completed load that has no manifest yet (normally just the newest; a
        crash after dlt finished leaves one for the next run). Runs before compaction, so a
        load's own files are still there to describe."""
        folder = f"{self.root}/{MANIFESTS}"
        done = (
            {Path(p).stem for p in self.fs.ls(folder, detail=False)}
            if self.fs.exists(folder)
            else set()
        )
        for load_id in completed_loads:
            if load_id not in done:
                manifest = self.manifest(load_id, contract_version)
                write_json_atomically(self.fs, f"{folder}/{load_id}.json", manifest)

    def manifest(self, load_id: str, contract_version: int) -> dict[str, Any]:
        """A load's tables with their row counts, folder and newest `last_updated` (the cursor
        it reached), read from the parquet files' own metadata."""
        tables: dict[str, Any] = {}
        for table in LAKE_TABLES:
            folder = self.day_folder(table, load_date(load_id))
            files = folder.load_files.get(load_id)
            if not files:
                continue
            rows, newest = 0, None
            for path in files:
                with self.fs.open(path, "rb") as handle:
                    metadata = pq.ParquetFile(handle).metadata
                rows += metadata.num_rows
                newest = max(filter(None, [newest, _newest_last_updated(metadata)]), default=None)
            tables[table] = {
                "rows": rows,
                "folder": folder.path.removeprefix(f"{self.root}/"),
                "newest_last_updated": newest.isoformat() if newest else None,
            }
        return {
            "load_id": load_id,
            "loaded_at": datetime.fromtimestamp(float(load_id), UTC).isoformat(),
            "contract_version": contract_version,
            "tables": tables,
        }


def _newest_last_updated(metadata: pq.FileMetaData) -> datetime | None:
    """The max of `last_updated` from the row groups' statistics (None if the file lacks it)."""
    names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
    if "last_updated" not in names:
        return None
    column = names.index("last_updated")
    stats = [
        metadata.row_group(g).column(column).statistics for g in range(metadata.num_row_groups)
    ]
    maxima = [s.max for s in stats if s is not None and s.has_min_max]
    return max(maxima, default=None)
