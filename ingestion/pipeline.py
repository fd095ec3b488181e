"""One pipeline run: extract -> load -> dbt build -> export, each stage timed and counted."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

from ingestion.config import Settings
from ingestion.database import run_lock
from ingestion.export import export
from ingestion.extract import extract
from ingestion.load import RAW_SCHEMA, load
from ingestion.retry import with_retries
from ingestion.transform import dbt_build


@dataclass
class StageResult:
    name: str
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)
    detail: str = ""


@dataclass
class RunReport:
    stages: list[StageResult] = field(default_factory=list)

    def stage(self, name: str) -> StageResult:
        return next(s for s in self.stages if s.name == name)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


def run(
    settings: Settings,
    on_stage: Callable[[StageResult], None] = lambda _: None,
    on_retry: Callable[[str], None] = lambda _: None,
) -> RunReport:
    """Run every stage once, holding the warehouse's run lock. Any failure raises; the next run
    picks up where this one stopped.

    Call `ingestion.database.preflight` first for a clear error when a database is unreachable.
    """
    report = RunReport()
    with run_lock(settings.warehouse_url), TemporaryDirectory(prefix="totes-dlt-") as work:
        # dlt's working folder lives for one run: its state always comes from the lake and
        # the warehouse, as in a container, so a stale local copy can never skip data.
        dlt_dir = Path(work)

        def extract_stage() -> tuple[dict[str, int], str]:
            return extract(settings.source_url, settings.lake_url, dlt_dir), settings.lake_url

        def load_stage() -> tuple[dict[str, int], str]:
            return load(settings.lake_url, settings.warehouse_url, dlt_dir), RAW_SCHEMA

        def dbt_stage() -> tuple[dict[str, int], str]:
            summary = dbt_build(settings.warehouse_url)
            return {}, f"{summary.passed} models, seeds and tests passed, {summary.warned} warned"

        def export_stage() -> tuple[dict[str, int], str]:
            return export(settings.warehouse_url, settings.processed_url), settings.processed_url

        for name, work_of_stage in (
            ("extract", extract_stage),
            ("load", load_stage),
            ("dbt", dbt_stage),
            ("export", export_stage),
        ):
            started = time.perf_counter()
            # every stage is idempotent, so a transient failure re-runs the whole stage
            rows, detail = with_retries(
                work_of_stage, f"the {name} stage", settings.retry_seconds, on_retry
            )
            result = StageResult(name, time.perf_counter() - started, rows, detail)
            report.stages.append(result)
            on_stage(result)
    return report
