"""dbt's compiled Jinja on disk (ingestion.jinja_cache): a warm cache compiles nothing and
renders exactly what a cold one does; a bad entry or folder costs a compile, never a result.
Every dbt build of the other tests runs through it too (their target folders keep it warm)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbt_common.clients import jinja as dbt_jinja
from dbt_common.clients.jinja import MacroFuzzEnvironment, get_template, render_template

from ingestion import jinja_cache

TEMPLATES = [
    # the same source must render as text in dbt's text environment, as a number in its native one
    ("{{ tables | length }}", False),
    ("{{ tables | length }}", True),
    ("{{ 1 + 1 }}", False),  # folded to a constant while compiling
    (
        "{% for t in tables %}select * from {{ t }}{% if not loop.last %} union all {% endif %}"
        "{% endfor %}",
        False,
    ),
    ("{% set quoted = name | replace(\"'\", \"''\") %}'{{ quoted }}'", False),
]
CONTEXT = {"tables": ["a", "b"], "name": "o'brien"}
EXPECTED = ["2", 2, "2", "select * from a union all select * from b", "'o''brien'"]


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The sources Jinja really compiled (code generation), while the test runs; then no cache."""
    generated: list[str] = []
    generate = MacroFuzzEnvironment._generate

    def counted(self: MacroFuzzEnvironment, source: Any, *args: Any, **kwargs: Any) -> Any:
        generated.append(source)
        return generate(self, source, *args, **kwargs)

    monkeypatch.setattr(MacroFuzzEnvironment, "_generate", counted)
    yield generated
    monkeypatch.setattr(jinja_cache, "_files", None)


def render_all() -> list[Any]:
    return [
        render_template(get_template(source, CONTEXT, native=native), CONTEXT)
        for source, native in TEMPLATES
    ]


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("__jinja2_*.cache"))


def test_a_warm_cache_compiles_nothing_and_renders_the_same(
    tmp_path: Path, compiles: list[str]
) -> None:
    jinja_cache.enable(tmp_path)
    assert render_all() == EXPECTED
    assert len(compiles) == len(TEMPLATES)
    assert len(entries(tmp_path)) == len(TEMPLATES)  # text and native kept apart

    compiles.clear()
    assert render_all() == EXPECTED
    assert compiles == []


def test_a_damaged_entry_is_compiled_again(tmp_path: Path, compiles: list[str]) -> None:
    jinja_cache.enable(tmp_path)
    render_all()
    for entry in entries(tmp_path):
        entry.write_bytes(entry.read_bytes()[:20])  # cut short, as by a full disk

    compiles.clear()
    assert render_all() == EXPECTED
    assert len(compiles) == len(TEMPLATES)
    compiles.clear()
    assert render_all() == EXPECTED  # and written again whole
    assert compiles == []


def test_a_folder_that_cannot_be_written_means_no_cache_not_an_error(
    tmp_path: Path, compiles: list[str]
) -> None:
    blocked = tmp_path / "target"
    blocked.write_text("a file where the folder should be")
    jinja_cache.enable(blocked / "jinja")
    assert render_all() == EXPECTED
    assert render_all() == EXPECTED
    assert len(compiles) == 2 * len(TEMPLATES)


def test_a_cache_past_its_limit_starts_again(
    tmp_path: Path, compiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jinja_cache, "MAX_ENTRIES", 3)
    jinja_cache.enable(tmp_path)
    render_all()
    assert len(entries(tmp_path)) == len(TEMPLATES)

    jinja_cache.enable(tmp_path)  # the next dbt command
    assert entries(tmp_path) == []
    compiles.clear()
    assert render_all() == EXPECTED
    assert len(compiles) == len(TEMPLATES)


def test_dbt_macro_debugging_compiles_every_time(
    tmp_path: Path, compiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DBT_MACRO_DEBUGGING names each compiled template for its tracebacks: a cached one would
    not be named."""
    jinja_cache.enable(tmp_path)
    render_all()
    monkeypatch.setattr(dbt_jinja, "MACRO_DEBUGGING", True)
    compiles.clear()
    assert render_all() == EXPECTED
    assert len(compiles) == len(TEMPLATES)
