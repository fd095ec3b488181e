"""The landing zone's completion rule: which lake loads a reader may use."""

from __future__ import annotations

from pathlib import Path

from ingestion.lake import Lake


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
