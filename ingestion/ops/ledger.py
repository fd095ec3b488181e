"""The run ledger: one row per run in `ops.pipeline_runs`, one per table and run in
`ops.pipeline_run_tables` (source tables, and the star tables exported), and dbt's node results
in `ops.dbt_node_results`.

A run's row is written when it starts (status `running`) and completed when it ends, failed or
not, so a run that died shows as `running` with no end. totes creates the schema itself: the
ledger must work before dbt has ever run, and when dbt is what failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg2

from ingestion.ops.run_events import NodeResult

LEDGER_DDL_LOCK = 0x6C65_6467  # "ledg": a fixed advisory-lock key
SCHEMA_DDL = """
create schema if not exists ops;
create table if not exists ops.pipeline_runs (
    run_id text primary key,
    command text not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    status text not null,  -- running | succeeded | failed | skipped | stopped
    exit_code integer,
    failed_stage text,
    error text,
    seconds numeric(10, 1),
    stage_seconds jsonb,
    freshness_lag_seconds numeric(12, 1),
    newest_fact_age_seconds numeric(12, 1)
);
create table if not exists ops.pipeline_run_tables (
    run_id text not null references ops.pipeline_runs (run_id) on delete cascade,
    table_name text not null,
    extracted integer not null default 0,
    loaded integer not null default 0,
    quarantined integer not null default 0,
    exported integer not null default 0,
    newest_last_updated timestamp,
    -- a source table: every change before the run's start reached the warehouse (null for the
    -- star tables, which only count exported rows)
    caught_up boolean,
    primary key (run_id, table_name)
);
create table if not exists ops.dbt_node_results (
    run_id text not null references ops.pipeline_runs (run_id) on delete cascade,
    unique_id text not null,
    resource_type text not null,
    status text not null,
    seconds numeric(10, 2) not null,
    failures integer,
    message text,
    primary key (run_id, unique_id)
);
"""


@dataclass
class TableRow:
    extracted: int = 0
    loaded: int = 0
    quarantined: int = 0
    exported: int = 0
    newest_last_updated: datetime | None = None
    caught_up: bool | None = None


@dataclass
class FinishedRun:
    run_id: str
    status: str
    exit_code: int
    finished_at: datetime
    seconds: float
    stage_seconds: dict[str, float]
    failed_stage: str | None = None
    error: str | None = None
    freshness_lag_seconds: float | None = None
    newest_fact_age_seconds: float | None = None
    tables: dict[str, TableRow] = field(default_factory=dict)
    dbt_nodes: list[NodeResult] = field(default_factory=list)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    command: str
    started_at: datetime
    status: str
    seconds: float | None
    failed_stage: str | None
    error: str | None
    exit_code: int | None
    extracted: int
    loaded: int
    exported: int


class Ledger:
    def __init__(self, warehouse_url: str) -> None:
        self.url = warehouse_url

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        connection = psycopg2.connect(self.url, connect_timeout=10)
        try:
            with connection, connection.cursor() as cursor:  # one transaction, committed
                yield cursor
        finally:
            connection.close()

    def start(self, run_id: str, command: str, started_at: datetime) -> None:
        with self._cursor() as cursor:
            # two first runs at once would race on `create ... if not exists`
            cursor.execute("select pg_advisory_xact_lock(%s)", (LEDGER_DDL_LOCK,))
            cursor.execute(SCHEMA_DDL)
            cursor.execute(
                "insert into ops.pipeline_runs (run_id, command, started_at, status) "
                "values (%s, %s, %s, 'running')",
                (run_id, command, started_at),
            )

    def finish(self, run: FinishedRun) -> None:
        with self._cursor() as cursor:
            cursor.execute(
                """
                update ops.pipeline_runs
                set finished_at = %s, status = %s, exit_code = %s, failed_stage = %s,
                    error = %s, seconds = %s, stage_seconds = %s,
                    freshness_lag_seconds = %s, newest_fact_age_seconds = %s
                where run_id = %s
                """,
                (
                    run.finished_at, run.status, run.exit_code, run.failed_stage, run.error,
                    run.seconds, json.dumps(run.stage_seconds), run.freshness_lag_seconds,
                    run.newest_fact_age_seconds, run.run_id,
                ),
            )  # fmt: skip
            cursor.executemany(
                "insert into ops.pipeline_run_tables values (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        run.run_id, table, row.extracted, row.loaded, row.quarantined,
                        row.exported, row.newest_last_updated, row.caught_up,
                    )
                    for table, row in run.tables.items()
                ],
            )  # fmt: skip
            cursor.executemany(
                "insert into ops.dbt_node_results values (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        run.run_id, n.unique_id, n.resource_type, n.status, n.seconds,
                        n.failures, n.message,
                    )
                    for n in run.dbt_nodes
                ],
            )  # fmt: skip

    def caught_up_since(self) -> dict[str, datetime]:
        """Per source table, the start of the newest run that brought it fully up to date."""
        with self._cursor() as cursor:
            cursor.execute("select to_regclass('ops.pipeline_run_tables') is not null")
            if not cursor.fetchone()[0]:
                return {}
            cursor.execute(
                """
                select t.table_name, max(r.started_at)
                from ops.pipeline_run_tables as t
                inner join ops.pipeline_runs as r on t.run_id = r.run_id
                where t.caught_up
                group by t.table_name
                """
            )
            return dict(cursor.fetchall())

    def recent_runs(self, count: int) -> list[RunSummary]:
        """The newest `count` runs, newest first, with their row totals."""
        with self._cursor() as cursor:
            cursor.execute("select to_regclass('ops.pipeline_runs') is not null")
            if not cursor.fetchone()[0]:
                return []
            cursor.execute(
                """
                select
                    r.run_id, r.command, r.started_at, r.status, r.seconds, r.failed_stage,
                    r.error, r.exit_code, coalesce(sum(t.extracted), 0),
                    coalesce(sum(t.loaded), 0), coalesce(sum(t.exported), 0)
                from ops.pipeline_runs as r
                left join ops.pipeline_run_tables as t on r.run_id = t.run_id
                group by r.run_id
                order by r.started_at desc
                limit %s
                """,
                (count,),
            )
            return [RunSummary(*row) for row in cursor.fetchall()]
