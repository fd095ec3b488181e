"""The landing zone's completion rule (which lake loads a reader may use), and compaction."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.lake.compaction import compact
from ingestion.lake.layout import COMPACTED, LAKE_LOAD_COLUMN, Lake, load_date


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")


def test_a_load_is_complete_with_either_its_state_file_or_its_manifest(tmp_path: Path) -> None:
    root = tmp_path / "totesys"
    touch(root / "_dlt_loads" / "sql_database__100.5.jsonl")  # manifest and state: complete
    touch(root / "_dlt_pipeline_state" / "totes_extract__100.5__abc.jsonl")
    # killed between dlt's two final writes: the cursor moved, so its rows must be used
    touch(root / "_dlt_pipeline_state" / "totes_extract__200.25__def.jsonl")
    touch(root / "_dlt_loads" / "sql_database__150.0.jsonl")  # a load that changed no cursor
    # killed while uploading: data files but no marker, so no reader may use them
    touch(root / "payment" / "load_date=2026-11-21" / "300.0.abc.parquet")
    lake = Lake(str(tmp_path))
    assert lake.completed_loads() == ["100.5", "150.0", "200.25"]
    assert lake.completed_loads(after="100.5") == ["150.0", "200.25"]
    assert lake.completed_loads(after="200.25") == []


def test_an_empty_lake_has_no_loads(tmp_path: Path) -> None:
    assert Lake(str(tmp_path / "nothing-yet")).completed_loads() == []


def write_load(root: Path, table: str, load_id: str, ids: list[int], **extra: list[object]) -> None:
    """A completed lake load of `table` with rows `ids`, as extract writes it."""
    folder = root / table / f"load_date={load_date(load_id)}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = {f"{table}_id": ids, **extra, LAKE_LOAD_COLUMN: [load_id] * len(ids)}
    pq.write_table(pa.table(rows), folder / f"{load_id}.abc.parquet")
    touch(root / "_dlt_loads" / f"sql_database__{load_id}.jsonl")


def ids_read(lake: Lake, table: str, loads: list[str]) -> list[int]:
    return sorted(i for rows in lake.read(table, loads) for i in rows[f"{table}_id"].to_pylist())


DAY_ONE = ["1763683200.5", "1763690000.25", "1763700000.0"]  # 2025-11-21, UTC
DAY_TWO = "1763769600.5"  # 2025-11-22


def test_a_closed_day_becomes_one_file_holding_every_row_once(tmp_path: Path) -> None:
    root = tmp_path / "totesys"
    write_load(root, "design", DAY_ONE[0], [1, 2])
    write_load(root, "design", DAY_ONE[1], [3], note=["a column the source added"])
    write_load(root, "design", DAY_ONE[2], [2])
    write_load(root, "design", DAY_TWO, [4])
    lake = Lake(str(tmp_path))
    done = compact(lake, lake.completed_loads(), at_files=100, today=date(2025, 11, 22))
    assert done == ["design/load_date=2025-11-21"]  # today's folder stays open
    day_one = root / "design" / "load_date=2025-11-21"
    assert [p.name for p in day_one.iterdir()] == [COMPACTED]
    merged = pq.read_table(day_one / COMPACTED)
    assert merged.column(LAKE_LOAD_COLUMN).to_pylist() == [*DAY_ONE[:1] * 2, *DAY_ONE[1:]]
    assert merged.column("note").to_pylist() == [None, None, "a column the source added", None]
    assert ids_read(lake, "design", DAY_ONE[1:]) == [2, 3]  # a reader asks for some loads
    assert ids_read(lake, "design", [*DAY_ONE, DAY_TWO]) == [1, 2, 2, 3, 4]
    assert (
        compact(lake, lake.completed_loads(), at_files=100, today=date(2025, 11, 22)) == []
    )  # nothing left to do


def test_a_crash_during_compaction_leaves_each_row_readable_once(tmp_path: Path) -> None:
    root = tmp_path / "totesys"
    write_load(root, "design", DAY_ONE[0], [1])
    write_load(root, "design", DAY_ONE[1], [2])
    lake = Lake(str(tmp_path))
    compact(lake, lake.completed_loads(), at_files=2, today=date(2025, 11, 21))
    # killed after writing the compacted file, before deleting the loads' own files
    write_load(root, "design", DAY_ONE[0], [1])
    # killed while uploading a later load: a file with no completion marker
    orphan = root / "design" / "load_date=2025-11-21" / f"{DAY_ONE[2]}.abc.parquet"
    pq.write_table(pa.table({"design_id": [9], LAKE_LOAD_COLUMN: [DAY_ONE[2]]}), orphan)
    assert ids_read(lake, "design", lake.completed_loads()) == [1, 2]
    compact(
        lake, lake.completed_loads(), at_files=100, today=date(2025, 11, 22)
    )  # the day is over: tidy it
    assert [p.name for p in orphan.parent.iterdir()] == [COMPACTED]
    assert ids_read(lake, "design", lake.completed_loads()) == [1, 2]
