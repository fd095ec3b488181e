"""Two `totes run` processes started together: one works, the other skips; nothing is corrupted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ingestion.common.database import preflight
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.generate import init_source
from tests.conftest import new_stack, query, settings_environment
from tests.test_star_schema import dims_of_a_clean_run_match, facts_without_record_ids


def test_two_runs_started_together_leave_the_warehouse_one_clean_run_would(
    postgres: LocalPostgres, tmp_path: Path
) -> None:
    settings = new_stack(postgres, tmp_path / "shared")
    preflight(settings)
    init_source(settings.source_url, scale=0.02, seed=3)
    totes = str(Path(sys.executable).parent / "totes")
    both = [
        subprocess.Popen(
            [totes, "run"], env=settings_environment(settings), cwd=tmp_path, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]  # fmt: skip
    outputs = [process.communicate(timeout=600) for process in both]
    assert [process.returncode for process in both] == [0, 0], outputs
    skipped = [out for out, _ in outputs if "skipped: another totes run" in out]
    assert len(skipped) <= 1  # usually exactly one; if they did not overlap, both ran: also fine

    reference = dims_of_a_clean_run_match(postgres, settings, tmp_path / "reference")
    assert facts_without_record_ids(settings.warehouse_url) == facts_without_record_ids(
        reference.warehouse_url
    )
    for table in ("payment", "sales_order"):
        count = f"select count(*) from totesys_raw.{table}"
        assert query(settings.warehouse_url, count) == query(reference.warehouse_url, count)
