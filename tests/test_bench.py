"""`make bench` at a tiny scale: the benchmark code runs end to end and reports every figure."""

from __future__ import annotations

import json
from pathlib import Path

from bench.benchmark import HELD, STAGES, LoopPlan, run_benchmark, write_results
from ingestion.local.postgres import LocalPostgres


def test_the_benchmark_reports_every_figure_at_a_tiny_scale(
    postgres: LocalPostgres, tmp_path: Path
) -> None:
    loop = LoopPlan(every=1, seconds=4, mean_gap=1, memory_runs=3)
    results = run_benchmark(
        postgres, tmp_path / "home", [0.02], repeats=1, say=lambda _: None, loop=loop
    )
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
    continuous = scale["continuous"]
    assert continuous["changes"] > 0 and continuous["failed_runs"] == 0
    for where in ("to_warehouse", "to_processed"):
        assert 0 < continuous[where]["p50"] <= continuous[where]["p95"] <= continuous[where]["max"]
    requests = results["s3_requests_per_run"]
    assert requests["initial"]["put_list"] > requests["no_change"]["put_list"] > 0
    assert requests["small_change"]["get"] > 0
    memory = results["memory"]
    assert memory["runs"] >= 3
    assert all(memory[held]["after_last_run"] > 0 for held in HELD)
    # one scale: every target but the growth ratio, which needs two
    assert [t["met"] in (True, False) for t in results["targets"]] == [True] * 6
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| initial load ÷ copy limit |" in table
    assert "| incremental run, scale 0.02, s | ≤ 15 |" in table
    assert "÷ scale 0.02" not in table
    assert "| continuous (`--every 1`): commit → processed zone, p50 / p95 / max |" in table
    assert "| loop process, resident MiB |" in table
    assert "S3 requests of one `totes run`" in table
