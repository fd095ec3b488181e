"""Compaction: a table's day folder in the landing zone becomes one file, not one per run.

Every run adds a small file per changed table, so a day of runs a minute apart would leave
over a thousand files in a folder. After each extract, a table's day folder is merged into
`compacted.parquet` when its day is over, or sooner once it holds `at_files` files.

Crash safety. The compacted file is written whole (see storage.write_atomically) and lists the
loads it holds in its parquet metadata; only then are those loads' own files deleted. Readers
(lake.Lake.read) take a load's rows from the compacted file when it lists the load, and from
the load's own files otherwise, so a crash at any point leaves every row readable exactly once.
Files of loads that never completed (a crash mid-upload) are deleted with the rest: their
cursors never moved, so the next extract read those rows again into a load of its own.

`_compaction.json` remembers the oldest day still open, so a run looks only at the folders of
today (and of the days since the last successful compaction), not at the whole history.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.lake.layout import (
    COMPACTED,
    COMPACTED_LOADS_KEY,
    LAKE_TABLES,
    DayFolder,
    Lake,
    load_date,
)
from ingestion.lake.storage import read_json, write_json_atomically, write_parquet_atomically

STATE = "_compaction.json"
ROW_GROUP_ROWS = 100_000


def compact(
    lake: Lake, completed_loads: list[str], at_files: int, today: date | None = None
) -> list[str]:
    """Compact the day folders due, given the lake's completed loads. Returns them as
    `<table>/load_date=<day>`."""
    today_text = (today or datetime.now(UTC).date()).isoformat()
    completed = set(completed_loads)
    state_path = f"{lake.root}/{STATE}"
    state = read_json(lake.fs, state_path)
    open_from = state["open_from"] if state else min(map(load_date, completed), default=today_text)
    days = sorted({load_date(i) for i in completed if load_date(i) >= open_from})
    compacted = []
    for table in LAKE_TABLES:
        for day in days:
            folder = lake.day_folder(table, day)
            if _due(folder, day < today_text, at_files, completed):
                _compact_folder(lake, folder, completed)
                compacted.append(folder.path.removeprefix(f"{lake.root}/"))
    if open_from != today_text:  # the days before today are done
        write_json_atomically(lake.fs, state_path, {"open_from": today_text})
    return compacted


def _due(folder: DayFolder, closed: bool, at_files: int, completed: set[str]) -> bool:
    if folder.file_count >= at_files:
        return True
    # a day that is over ends as one file, of completed loads only
    return closed and (folder.file_count > 1 or not folder.load_files.keys() <= completed)


def _compact_folder(lake: Lake, folder: DayFolder, completed: set[str]) -> None:
    """Merge the folder's completed loads into its compacted file, then delete their files."""
    new_loads = sorted(
        (i for i in folder.load_files if i in completed and i not in folder.compacted_loads),
        key=float,
    )
    if new_loads:
        paths = [p for load_id in new_loads for p in folder.load_files[load_id]]
        parts = [_read_whole(lake, p) for p in [*filter(None, [folder.compacted]), *paths]]
        # a column the source added later is null in the older rows
        rows = pa.concat_tables(parts, promote_options="default")
        loads = sorted(folder.compacted_loads | set(new_loads), key=float)
        rows = rows.replace_schema_metadata({COMPACTED_LOADS_KEY: json.dumps(loads).encode()})
        path = f"{folder.path}/{COMPACTED}"
        write_parquet_atomically(lake.fs, path, rows, row_group_size=ROW_GROUP_ROWS)
    # now held by the compacted file, or the leftovers of loads that never completed
    _delete(lake, [path for paths in folder.load_files.values() for path in paths])


def _delete(lake: Lake, paths: list[str]) -> None:
    if paths:
        lake.fs.rm(paths)


def _read_whole(lake: Lake, path: str) -> pa.Table:
    with lake.fs.open(path, "rb") as handle:
        return pq.read_table(handle)
