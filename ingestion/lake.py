"""The landing zone's layout, shared by the writer (extract) and the reader (load).

    <lake>/totesys/<table>/load_date=YYYY-MM-DD/<load_id>.<file_id>.parquet
    <lake>/totesys/_dlt_pipeline_state/totes_extract__<load_id>__<hash>.jsonl   cursors
    <lake>/totesys/_dlt_loads/sql_database__<load_id>.jsonl                      manifest

When all of a load's data files are in place, dlt writes its state file (the new cursors), then
its `_dlt_loads` entry. Either one marks the load complete: a crash between the two must not
leave data behind whose cursor has already moved. A load with neither is incomplete, and no
reader may use it. The date partition is derived from the load id (a unix timestamp), so a
reader finds a load's files by path alone, without listing the table's history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dlt.common.storages import FilesystemConfiguration, fsspec_from_config

from ingestion.source.generate import TABLES
from ingestion.source_keys import KEYS_TABLE

DATASET = "totesys"
LAYOUT = "{table_name}/load_date={load_date}/{load_id}.{file_id}.{ext}"
COMPLETION_MARKERS = ("_dlt_loads", "_dlt_pipeline_state")
LAKE_TABLES = (*TABLES, KEYS_TABLE)  # the source's tables, and its key snapshots


def bucket_url(url: str) -> str:
    """A `file://`-less local path made absolute; `s3://...` unchanged."""
    return url if "://" in url else str(Path(url).resolve())


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
        self.fs, root = fsspec_from_config(FilesystemConfiguration(bucket_url(url)))
        self.root = f"{root.rstrip('/')}/{dataset}"

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
