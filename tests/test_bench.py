"""`make bench` at a tiny scale: the benchmark code runs end to end and reports every figure."""

from __future__ import annotations

import json
from pathlib import Path

from bench import s3_requests
from bench.benchmark import HELD, STAGES, LoopPlan, run_benchmark, write_results
from ingestion.local.postgres import LocalPostgres


def test_the_benchmark_reports_every_figure_at_a_tiny_scale(
    postgres: LocalPostgres, tmp_path: Path
) -> None:
    loop = LoopPlan(every=1, seconds=2, mean_gap=0.5, memory_runs=2)
    results = run_benchmark(
        postgres, tmp_path / "home", [0.02], repeats=1, say=lambda _: None, loop=loop,
        count_s3_requests=False,  # a run on moto's server costs CI 30 s: make bench counts
    )  # fmt: skip
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
    memory = results["memory"]
    assert memory["runs"] >= 2
    assert all(memory[held]["after_last_run"] > 0 for held in HELD)
    # one scale: every target but the growth ratio, which needs two
    assert [t["met"] in (True, False) for t in results["targets"]] == [True] * 6
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| initial load ÷ copy limit |" in table
    assert "| incremental run, scale 0.02, s | ≤ 15 |" in table
    assert "÷ scale 0.02" not in table
    assert "| continuous (`--every 1`): commit → processed zone, p50 / p95 / max |" in table
    assert "| loop process, resident MiB |" in table


def test_s3_requests_are_counted_by_price_tier_from_the_servers_log() -> None:
    log = "\n".join(
        f'127.0.0.1 - - [07/Dec/2026 09:33:59] "{request} HTTP/1.1" 200 -'
        for request in (
            "PUT /lake/totes/totesys/payment/load_date%3D2026-12-07/1.parquet",
            "POST /lake/totes/big.parquet?uploads",
            "GET /lake?list-type=2&prefix=totes/totesys/_dlt_loads/&delimiter=/",
            "GET /lake/totes/totesys/_manifests/1.json",
            "HEAD /lake/totes/totesys/init",
            "DELETE /lake/totes/totesys/payment/load_date%3D2026-12-07/1.parquet",
        )
    )
    assert s3_requests.count(log) == {"put_list": 3, "get": 2}
