"""Follows one `totes run` or `totes rebuild`: logs each event as it happens, and at the end
writes the run ledger, the metrics and any alert. None of that may hide the run's own error: a
monitoring step that fails is logged as a warning and skipped.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from ingestion.config import Settings
from ingestion.errors import (
    ContractViolation,
    RunInProgress,
    RunStopped,
    TotesError,
    UnsupportedServer,
)
from ingestion.extract import TABLES
from ingestion.ops.alerts import Alert, Alerts, failure_alert, freshness_alert
from ingestion.ops.freshness import (
    SLA_MINUTES,
    breached,
    lag_seconds,
    newest_fact_version,
    newest_versions,
)
from ingestion.ops.ledger import FinishedRun, Ledger, TableRow
from ingestion.ops.log import Log, table_counts
from ingestion.ops.metrics import run_metrics
from ingestion.ops.run_events import NodeResult, RunEvents, StageResult

T = TypeVar("T")
STAGE_COLUMNS = {
    "extract": "extracted",
    "load": "loaded",
    "quarantine": "quarantined",
    "export": "exported",
}


class Monitor(RunEvents):
    def __init__(
        self,
        command: str,
        settings: Settings,
        log: Log,
        started_at: datetime,
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        self.command, self.settings, self.started_at = command, settings, started_at
        self._stop_requested = stop_requested
        self.run_id = f"{started_at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        self._log = log.bind(run_id=self.run_id, command=command)
        self.ledger = Ledger(settings.warehouse_url)
        self.ledger_open = False
        self.stage: str | None = None
        self.results: list[StageResult] = []
        self.nodes: list[NodeResult] = []
        topic = settings.alert_topic_arn
        self.alerts = Alerts(topic, settings.lake_url) if topic else None

    @property
    def log(self) -> Log:
        """The run's log: every line carries the run id, and the stage once one has begun."""
        return self._log.bind(stage=self.stage) if self.stage else self._log

    # the run's events, as they happen

    def stage_started(self, name: str) -> None:
        self.stage = name
        self.log.info(f"{name} started", text="")

    def stage_finished(self, result: StageResult) -> None:
        total = sum(result.rows.values())
        unit = "held" if result.name == "quarantine" else "rows"
        rows = f"{total:>9,} {unit}" if result.rows or result.name in ("extract", "load") else ""
        text = f"  {result.name:<11}{result.seconds:6.1f} s {rows:<14}  {result.detail}"
        if result.rows and result.name != "dbt":
            text += f"\n{'':23}{table_counts(result.rows)}"
        seconds = round(result.seconds, 3)
        self.log.info(
            f"{result.name} finished", text=text, seconds=seconds, rows=total, detail=result.detail
        )
        for table, count in result.rows.items():
            self.log.info(f"{result.name} {table}", text="", table=table, rows=count)
        self.results.append(result)

    def retrying(self, message: str) -> None:
        self.log.retrying(message)

    def warning(self, message: str) -> None:
        self.log.warning(message)

    def dbt_nodes(self, nodes: list[NodeResult]) -> None:
        self.nodes = nodes

    def stop_requested(self) -> bool:
        return self._stop_requested()

    # the start and the end

    def open(self) -> None:
        """Record the run's start. If the warehouse cannot take it, the run goes on (its own
        error will say why), and the end skips everything that reads the warehouse."""
        try:
            self.ledger.start(self.run_id, self.command, self.started_at)
            self.ledger_open = True
        except Exception as error:
            self._skipped("write the run ledger", error)

    def close(self, error: BaseException | None) -> None:
        """Record how the run ended: ledger, metrics, alerts."""
        refused = isinstance(error, UnsupportedServer) and error.role == "warehouse"
        if not self.ledger_open and not isinstance(error, RunInProgress) and not refused:
            self.open()  # it failed before it could start: record it all the same
        now = datetime.now(UTC)
        run = FinishedRun(
            run_id=self.run_id,
            status="succeeded",
            exit_code=0,
            finished_at=now,
            seconds=(now - self.started_at).total_seconds(),
            stage_seconds={r.name: round(r.seconds, 3) for r in self.results},
            dbt_nodes=self.nodes,
        )
        held_back: list[str] = []
        if isinstance(error, RunInProgress):
            run.status = "skipped"
        elif isinstance(error, RunStopped):  # between stages: nothing to alert about
            run.status, run.error = "stopped", str(error)
        elif error is not None:
            run.status, run.failed_stage = "failed", self.stage
            run.exit_code = error.exit_code if isinstance(error, TotesError) else 1
            run.error = self.log.scrub(f"{type(error).__name__}: {error}".splitlines()[0])
            if isinstance(error, ContractViolation):  # raised after all stages ran
                run.failed_stage, held_back = "extract", error.tables
        run.tables = self._tables(error, held_back)
        lags: dict[str, float] = {}
        if self.ledger_open:
            lags = self._lags(run, now)
            self._try("write the run ledger", lambda: self.ledger.finish(run))
        for document in run_metrics(self.command, run):
            self.log.metric(document)
        self._alert(run, held_back, lags, now)

    def _tables(self, error: BaseException | None, held_back: list[str]) -> dict[str, TableRow]:
        tables: dict[str, TableRow] = {}
        for result in self.results:
            column = STAGE_COLUMNS.get(result.name)
            for table, count in result.rows.items() if column else ():
                setattr(tables.setdefault(table, TableRow()), column, count)
        ran_to_the_end = error is None or isinstance(error, ContractViolation)
        newest = None
        if self.ledger_open:
            newest = self._try(
                "read the watermarks", lambda: newest_versions(self.settings.warehouse_url, TABLES)
            )
        for table in TABLES:
            row = tables.setdefault(table, TableRow())
            # a rebuild never reads the source, so it brings nothing up to date
            row.caught_up = self.command == "run" and ran_to_the_end and table not in held_back
            row.newest_last_updated = (newest or {}).get(table)
        return tables

    def _lags(self, run: FinishedRun, now: datetime) -> dict[str, float]:
        since = self._try("read the run ledger", self.ledger.caught_up_since) or {}
        for table, row in run.tables.items():
            if row.caught_up:
                since[table] = self.started_at
        lags = lag_seconds(since, now)
        run.freshness_lag_seconds = max(lags.values(), default=None)
        newest = self._try(
            "read the facts", lambda: newest_fact_version(self.settings.warehouse_url)
        )
        if newest is not None:
            run.newest_fact_age_seconds = (now - newest.replace(tzinfo=UTC)).total_seconds()
        return lags

    def _alert(
        self, run: FinishedRun, held_back: list[str], lags: dict[str, float], now: datetime
    ) -> None:
        group = self.settings.log_group
        where = (
            f"Where to look: the log lines with run_id {self.run_id}"
            f"{f' in log group {group}' if group else ''}, `totes status`, and the table "
            "ops.pipeline_runs in the warehouse."
        )
        alerts: list[Alert] = []
        if run.status == "failed":
            stage, error = run.failed_stage, run.error or ""
            alerts.append(failure_alert(self.command, self.run_id, stage, held_back, error, where))
        behind = breached(lags)
        if behind:
            minutes = {table: round(seconds / 60) for table, seconds in behind.items()}
            self.log.warning(
                f"the warehouse is more than {SLA_MINUTES} minutes behind the source: "
                f"{table_counts(minutes)} minutes",
                lag_seconds=behind,
            )
            alerts.append(freshness_alert(self.run_id, behind, SLA_MINUTES, where))
        for alert in alerts:
            self._publish(alert, now)

    def _publish(self, alert: Alert, now: datetime) -> None:
        if self.alerts is None:
            return
        alerts = self.alerts
        sent = self._try("publish the alert", lambda: alerts.send(alert, now))
        if sent is None:
            return  # the failure to publish is already logged as a warning
        outcome = "sent" if sent else "held back (the same alert went out within the hour)"
        self.log.info(f"alert {outcome}: {alert.subject}", text="", alert=alert.subject, sent=sent)

    def _try(self, what: str, step: Callable[[], T]) -> T | None:
        try:
            return step()
        except Exception as error:
            self._skipped(what, error)
            return None

    def _skipped(self, what: str, error: Exception) -> None:
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        self.log.warning(f"could not {what}: {type(error).__name__}: {message}")
