"""`make bench` at a tiny scale: the benchmark code runs end to end and reports every figure."""

from __future__ import annotations

import json
from pathlib import Path

from bench.benchmark import STAGES, run_benchmark, write_results
from ingestion.local.postgres import LocalPostgres


def test_the_benchmark_reports_every_figure_at_a_tiny_scale(
    postgres: LocalPostgres, tmp_path: Path
) -> None:
    results = run_benchmark(postgres, tmp_path / "home", [0.02], repeats=1, say=lambda _: None)
    write_results(results, tmp_path / "out")

    scale = json.loads((tmp_path / "out" / "results.json").read_text())["scales"]["0.02"]
    assert scale["source_rows"] > 0
    assert scale["generation"]["rows_per_second"]["median"] > 0
    assert scale["copy_limit_seconds"]["median"] > 0
    for run in ("initial_load", "incremental"):
        assert set(scale[run]["stages"]) == set(STAGES), run
        assert scale[run]["wall_seconds"]["median"] > sum(
            stage["median"] for stage in scale[run]["stages"].values()
        )
    assert scale["initial_load"]["peak_rss_mib"]["max"] > 50  # dbt and dlt alone are bigger
    assert scale["freshness"]["worst_case_in_production_seconds"] > 300
    assert scale["full_refresh"]["over_incremental"] > 0
    # one scale: every target but the growth ratio, which needs two
    assert [t["met"] in (True, False) for t in results["targets"]] == [True] * 4
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| initial load ÷ copy limit |" in table
    assert "| incremental run, scale 0.02, s | ≤ 15 |" in table
    assert "÷ scale 0.02" not in table
