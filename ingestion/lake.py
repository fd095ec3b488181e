"""The landing zone's layout, shared by the writer (extract) and the reader (load).

    <lake>/totesys/<table>/load_date=YYYY-MM-DD/<load_id>.<file_id>.parquet
    <lake>/totesys/_dlt_loads/totesys__<load_id>.jsonl      one per completed load

dlt writes a load's `_dlt_loads` entry only after all its data files are in place, so that entry
is the manifest: a load without one is incomplete and no reader may use it. The date partition
is derived from the load id (a unix timestamp), so a reader finds a load's files by path alone,
without listing the table's history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dlt.common.storages import FilesystemConfiguration, fsspec_from_config

DATASET = "totesys"
LAYOUT = "{table_name}/load_date={load_date}/{load_id}.{file_id}.{ext}"
LOADS_TABLE = "_dlt_loads"


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
        folder = f"{self.root}/{LOADS_TABLE}"
        if not self.fs.exists(folder):
            return []
        ids = [
            Path(name).name.split("__", 1)[1].removesuffix(".jsonl")
            for name in self.fs.ls(folder, detail=False)
        ]
        newer = [i for i in ids if after is None or float(i) > float(after)]
        return sorted(newer, key=float)

    def files(self, table: str, load_id: str) -> list[str]:
        """The parquet files one load wrote for one table (none if it had no rows)."""
        folder = f"{self.root}/{table}/load_date={load_date(load_id)}"
        return sorted(self.fs.glob(f"{folder}/{load_id}.*.parquet"))

    def open(self, path: str) -> Any:
        return self.fs.open(path, "rb")
