"""One pipeline run: extract -> load -> dbt build -> export, each stage timed and counted."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ingestion.config import Settings
from ingestion.export import export
from ingestion.extract import extract
from ingestion.load import RAW_SCHEMA, load
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


def run(settings: Settings, on_stage: Callable[[StageResult], None] = lambda _: None) -> RunReport:
    """Run every stage once. Any failure raises; the next run picks up where this one stopped.

    Call `ingestion.database.preflight` first for a clear error when a database is unreachable.
    """
    pipelines_dir = settings.home / "dlt"
    report = RunReport()

    def stage(name: str, work: Callable[[], tuple[dict[str, int], str]]) -> None:
        started = time.perf_counter()
        rows, detail = work()
        result = StageResult(name, time.perf_counter() - started, rows, detail)
        report.stages.append(result)
        on_stage(result)

    stage(
        "extract",
        lambda: (extract(settings.source_url, settings.lake_url, pipelines_dir), settings.lake_url),
    )
    stage(
        "load",
        lambda: (load(settings.lake_url, settings.warehouse_url, pipelines_dir), RAW_SCHEMA),
    )

    def transform() -> tuple[dict[str, int], str]:
        summary = dbt_build(settings.warehouse_url)
        return {}, f"{summary.passed} models, seeds and tests passed, {summary.warned} warned"

    stage("dbt", transform)
    stage(
        "export",
        lambda: (export(settings.warehouse_url, settings.processed_url), settings.processed_url),
    )
    return report
