"""dbt's JSON schemas on disk (ingestion.schema_cache): dbt checks its files against what the
folder holds once a process has built it; a bad entry or folder costs a build, never a check.
Every dbt command of the other tests runs through it too (their target folders keep it warm)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dbt.contracts.project import Project
from dbt_common.dataclass_schema import ValidationError, dbtClassMixin
from mashumaro.jsonschema import build_json_schema

from ingestion import schema_cache
from ingestion.transform import PROJECT_DIR


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache folder; afterwards no cache, and nothing held in memory."""
    schema_cache.enable(tmp_path)
    forget()
    yield tmp_path
    monkeypatch.setattr(schema_cache, "_folder", None)
    forget()


def forget() -> None:
    """Drop the schemas this process holds: the next call reads the folder, or builds."""
    dbtClassMixin.json_schema.__func__.cache_clear()  # type: ignore[attr-defined]


def built_by_mashumaro() -> Any:
    return json.loads(json.dumps(build_json_schema(Project).to_dict()))


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


def test_a_schema_is_built_once_then_read_from_the_folder(folder: Path) -> None:
    assert Project.json_schema() == built_by_mashumaro()
    [entry] = entries(folder)
    assert json.loads(entry.read_text()) == built_by_mashumaro()

    entry.write_text(json.dumps({"title": "from the folder"}))
    forget()  # as a new process
    assert Project.json_schema() == {"title": "from the folder"}


def test_dbt_checks_its_files_against_the_cached_schema(folder: Path) -> None:
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    Project.validate(project)  # builds and keeps the schema
    forget()
    Project.validate(project)  # reads it
    with pytest.raises(ValidationError, match="is not of type 'string'"):
        Project.validate({**project, "name": 5})


def test_a_damaged_entry_is_built_again(folder: Path) -> None:
    Project.json_schema()
    [entry] = entries(folder)
    entry.write_text(entry.read_text()[:20])  # cut short, as by a full disk
    forget()
    assert Project.json_schema() == built_by_mashumaro()
    assert json.loads(entry.read_text()) == built_by_mashumaro()  # and written again whole


def test_a_folder_that_cannot_be_written_means_no_cache_not_an_error(tmp_path: Path) -> None:
    blocked = tmp_path / "target"
    blocked.write_text("a file where the folder should be")
    schema_cache.enable(blocked / "json_schemas")
    forget()
    try:
        assert Project.json_schema() == built_by_mashumaro()
    finally:
        forget()
    assert blocked.read_text() == "a file where the folder should be"
