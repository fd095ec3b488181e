"""The landing zone's layout, shared by the writer (extract) and the reader (load).

    <lake>/totesys/<table>/load_date=YYYY-MM-DD/<load_id>.<file_id>.parquet
    <lake>/totesys/_dlt_pipeline_state/totes_extract__<load_id>__<hash>.jsonl   cursors
    <lake>/totesys/_dlt_loads/sql_database__<load_id>.jsonl                      dlt's marker
    <lake>/totesys/_manifests/<load_id>.json        what a load holds, for people (see Manifest)

When all of a load's data files are in place, dlt writes its state file (the new cursors), then
its `_dlt_loads` entry. Either one marks the load complete: a crash between the two must not
leave data behind whose cursor has already moved. A load with neither is incomplete, and no
reader may use it. The date partition is derived from the load id (a unix timestamp), so a
reader finds a load's files by path alone, without listing the table's history.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ingestion.source.generate import TABLES
from ingestion.source_keys import KEYS_TABLE
from ingestion.storage import filesystem, write_atomically

DATASET = "totesys"
LAYOUT = "{table_name}/load_date={load_date}/{load_id}.{file_id}.{ext}"
COMPLETION_MARKERS = ("_dlt_loads", "_dlt_pipeline_state")
MANIFESTS = "_manifests"
LAKE_TABLES = (*TABLES, KEYS_TABLE)  # the source's tables, and its key snapshots


def load_date(load_id: str) -> str:
    return datetime.fromtimestamp(float(load_id), UTC).date().isoformat()


def load_date_placeholder(
    schema_name: str, table_name: str, load_id: str, file_id: str, ext: str
) -> str:
    """dlt layout placeholder: the load's UTC date."""
    return load_date(load_id)


class Lake:
    """Read access to the landing zone of one dataset."""

    def __init__(self, url: str, dataset: str = DATASET) -> None:
        self.fs, root = filesystem(url)
        self.root = f"{root}/{dataset}"

    def completed_loads(self, after: str | None = None) -> list[str]:
        """Ids of the completed loads newer than `after`, oldest first."""
        ids: set[str] = set()
        for marker in COMPLETION_MARKERS:
            folder = f"{self.root}/{marker}"
            if self.fs.exists(folder):
                # <name>__<load_id>.jsonl or <pipeline>__<load_id>__<hash>.jsonl
                names = (Path(path).stem for path in self.fs.ls(folder, detail=False))
                ids.update(name.split("__")[1] for name in names)
        return sorted((i for i in ids if after is None or float(i) > float(after)), key=float)

    def files(self, table: str, load_id: str) -> list[str]:
        """The parquet files one load wrote for one table (none if it had no rows)."""
        folder = f"{self.root}/{table}/load_date={load_date(load_id)}"
        return sorted(self.fs.glob(f"{folder}/{load_id}.*.parquet"))

    def open(self, path: str) -> Any:
        return self.fs.open(path, "rb")

    def write_missing_manifests(self, contract_version: int) -> list[str]:
        """Describe each completed load that has no manifest yet (normally just the newest; a
        crash after dlt finished leaves one for the next run). Returns the load ids written."""
        folder = f"{self.root}/{MANIFESTS}"
        done = (
            {Path(p).stem for p in self.fs.ls(folder, detail=False)}
            if self.fs.exists(folder)
            else set()
        )
        written = []
        for load_id in self.completed_loads():
            if load_id not in done:
                manifest = self.manifest(load_id, contract_version)
                payload = json.dumps(manifest, indent=2).encode()
                write_atomically(self.fs, f"{folder}/{load_id}.json", payload)
                written.append(load_id)
        return written

    def manifest(self, load_id: str, contract_version: int) -> dict[str, Any]:
        """A load's tables with their row counts, files and newest `last_updated` (the cursor
        it reached), read from the parquet files' own metadata."""
        tables: dict[str, Any] = {}
        for table in LAKE_TABLES:
            files = self.files(table, load_id)
            if not files:
                continue
            rows, newest = 0, None
            for path in files:
                with self.open(path) as handle:
                    metadata = pq.ParquetFile(handle).metadata
                rows += metadata.num_rows
                newest = max(filter(None, [newest, _newest_last_updated(metadata)]), default=None)
            tables[table] = {
                "rows": rows,
                "files": [path.removeprefix(f"{self.root}/") for path in files],
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
