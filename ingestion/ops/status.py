"""`totes status`: the last runs, the lag of every table against the SLA, the quarantine, and
what to do next. Read from the run ledger, so it works from any machine that reaches the
warehouse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ingestion.extract import TABLES
from ingestion.ops.freshness import SLA_MINUTES, breached, lag_seconds
from ingestion.ops.ledger import Ledger, RunSummary
from ingestion.transform.quarantine import quarantined_rows, rejected_files

NEXT_STEP_BY_EXIT_CODE = {
    2: "fix the setting the error names",
    3: "fix the database URL or its grants",
    65: "fix the source's schema, or change its contract and the models on purpose",
    75: "nothing if the next run succeeds: the failure was transient (network, S3, restart)",
}


@dataclass(frozen=True)
class Status:
    runs: list[RunSummary]
    lags: dict[str, float]  # seconds, per source table that was ever caught up
    held: dict[str, int]  # quarantined versions per table, and delivery files set aside

    @property
    def behind(self) -> dict[str, float]:
        """Tables over the SLA, or never brought up to date."""
        never = {table: float("inf") for table in TABLES if table not in self.lags}
        return {**breached(self.lags), **never}

    def next_step(self) -> str:
        last = self.runs[0] if self.runs else None
        if last is None:
            return "no run is recorded: run `totes run`, and schedule it"
        if last.status == "failed":
            fix = NEXT_STEP_BY_EXIT_CODE.get(last.exit_code or 1, "read the error, fix, rerun")
            return f"the last run failed at {last.failed_stage or 'start-up'}: {fix}"
        if last.status == "stopped":
            return "the last run was stopped between two stages (SIGTERM): the next goes on"
        if last.status == "running":
            return "a run is in progress, or died without an end: check the task if it lasts"
        if self.behind:
            return "runs succeed but not often enough: check that the schedule runs"
        if self.held:
            return "versions or files are held in quarantine: see `totes quarantine list`"
        return "nothing: all is well"


def read_status(warehouse_url: str, runs: int) -> Status:
    ledger = Ledger(warehouse_url)
    held: dict[str, int] = {}
    for row in quarantined_rows(warehouse_url):
        if row.status == "held":
            held[row.source_table] = held.get(row.source_table, 0) + 1
    set_aside = sum(not file.replaced for file in rejected_files(warehouse_url))
    if set_aside:
        held["delivery files"] = set_aside
    lags = lag_seconds(ledger.caught_up_since(), datetime.now(UTC))
    return Status(ledger.recent_runs(runs), lags, held)


def render(status: Status) -> list[str]:
    lines = [f"{'started (UTC)':<21}{'command':<9}{'status':<11}{'seconds':>8}"
             f"{'extracted':>11}{'loaded':>9}{'exported':>10}  error"]  # fmt: skip
    for run in status.runs:
        seconds = f"{run.seconds:.1f}" if run.seconds is not None else "-"
        lines.append(
            f"{run.started_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}  {run.command:<9}"
            f"{run.status:<11}{seconds:>8}{run.extracted:>11,}{run.loaded:>9,}{run.exported:>10,}"
            f"  {_shortened(run.error or '')}"
        )
    if not status.runs:
        lines.append("(no runs recorded)")
    lines += ["", f"{'table':<16}{'lag':>10}  SLA {SLA_MINUTES} min"]
    for table in TABLES:
        lag = status.lags.get(table)
        shown = f"{lag / 60:.1f} min" if lag is not None else "never"
        verdict = "BEHIND" if table in status.behind else "ok"
        lines.append(f"{table:<16}{shown:>10}  {verdict}")
    held = ", ".join(f"{table} {count:,}" for table, count in status.held.items())
    lines += ["", f"quarantine: {held or 'nothing held'}", f"next step: {status.next_step()}"]
    return lines


def _shortened(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
