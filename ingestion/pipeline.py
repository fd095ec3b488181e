"""One pipeline run: extract (with the lake's manifests and compaction) -> fx -> deliveries ->
load -> dbt build -> quarantine -> export, each stage timed and counted; and the rebuild of the
warehouse from the lake alone.

The extract checks the source against the data contract first. A table that breaks it is left
out (its cursor stays put) while the others run to the end; then the run fails naming it.
The FX rates and the delivery files are extras: when their API or bucket fails, the run warns
and goes on without them, and the next run asks again from the same cursor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from ingestion.common.database import drop_schema, run_lock
from ingestion.common.retry import with_retries
from ingestion.config import Settings
from ingestion.errors import ContractViolation, RunStopped
from ingestion.export.processed import export
from ingestion.extract import REJECTED_TABLE, TABLES
from ingestion.extract.contract import Contract, ContractCheck, check_source
from ingestion.extract.deliveries import extract_deliveries
from ingestion.extract.fx import extract_fx, fx_api, newest_publishable_day, newest_rate_day
from ingestion.extract.totesys import extract
from ingestion.lake.compaction import compact
from ingestion.lake.layout import Lake
from ingestion.load.raw import FX, RAW_DATASETS, load
from ingestion.ops.run_events import RunEvents, RunReport, StageResult
from ingestion.transform.dbt_build import DbtWorker, dbt_build
from ingestion.transform.quarantine import mirror_to_lake

Stage = tuple[str, Callable[[], tuple[dict[str, int], str]]]


def run(
    settings: Settings, events: RunEvents | None = None, dbt: DbtWorker | None = None
) -> RunReport:
    """Run every stage once, holding the warehouse's run lock. Any failure raises; the next run
    picks up where this one stopped. Raises ContractViolation at the end if a table was left out.
    dbt builds in `dbt`'s process (transform.dbt_build.started_dbt), or else in this one.

    Call `ingestion.common.database.preflight` first for a clear error when a database is down.
    """
    events = events or RunEvents()
    contract = Contract.load()
    check = ContractCheck()
    with _locked(settings, dbt):

        def extract_stage() -> tuple[dict[str, int], str]:
            nonlocal check
            check = check_source(settings.source_url, contract)
            for warning in check.warnings:
                events.warning(f"data contract: {warning}")
            tables = check.usable(TABLES)
            rows = extract(settings.source_url, settings.lake_url, tables, settings.key_check_every)
            lake = Lake(settings.lake_url)
            completed = lake.completed_loads()
            lake.write_missing_manifests(completed, contract.version)  # before compaction
            compacted = compact(lake, completed, settings.compact_at_files)
            merged = f"; compacted {len(compacted)} day folders" if compacted else ""
            held_back = f"; held back: {', '.join(check.broken)}" if check.broken else ""
            return rows, settings.lake_url + merged + held_back

        def fx_stage() -> tuple[dict[str, int], str]:
            try:
                # rates are daily: the API is asked only when a newer day may be out
                newest = newest_rate_day(settings.warehouse_url, FX.raw_schema)
                if newest is not None and newest >= newest_publishable_day(datetime.now(UTC)):
                    return {}, f"up to date (rates to {newest})"
                with fx_api(settings.fx_url) as url:
                    return extract_fx(url, settings.lake_url), url
            except Exception as error:  # the business tables must not wait for FX rates
                events.warning(
                    f"FX rates not fetched: {error}. dim_fx_rate carries its last rates "
                    "forward, and the next run asks again."
                )
                return {}, "not fetched (see the warning)"

        def deliveries_stage() -> tuple[dict[str, int], str]:
            try:
                rows = extract_deliveries(settings.deliveries_url, settings.lake_url)
            except Exception as error:  # nor for the delivery partner's bucket
                events.warning(
                    f"delivery files not read from {settings.deliveries_url}: {error}. "
                    "The next run reads them from where this one stopped."
                )
                return {}, "not read (see the warning)"
            if rows.get(REJECTED_TABLE):
                events.warning(
                    f"{rows[REJECTED_TABLE]} delivery files break the contract and were set "
                    "aside, whole: see `totes quarantine list`"
                )
            return rows, settings.deliveries_url

        report = _run_stages(
            [
                ("extract", extract_stage),
                ("fx", fx_stage),
                ("deliveries", deliveries_stage),
                *_warehouse_stages(settings, events, dbt),
            ],
            settings,
            events,
            stoppable=True,
        )
    if check.broken:
        raise ContractViolation(
            f"the source breaks the data contract (v{contract.version}), so these tables were "
            f"not extracted and keep their cursors; every other table ran. "
            f"{check.describe_broken()}. Fix the source, or change ingestion/extract/contract.yml "
            "and the models on purpose.",
            tables=list(check.broken),
        )
    return report


def rebuild(
    settings: Settings, events: RunEvents | None = None, dbt: DbtWorker | None = None
) -> RunReport:
    """Disaster recovery: drop the raw schema and rebuild raw, marts and the processed zone
    from the lake alone (dbt with --full-refresh, in `dbt`'s process or this one). The source
    is not read."""
    events = events or RunEvents()
    with _locked(settings, dbt):

        def reset_stage() -> tuple[dict[str, int], str]:
            schemas = [dataset.raw_schema for dataset in RAW_DATASETS]
            for schema in schemas:  # with each, its load's watermark
                drop_schema(settings.warehouse_url, schema)
            return {}, f"dropped {', '.join(schemas)}; every lake load is loaded again"

        return _run_stages(
            [
                ("reset", reset_stage),
                *_warehouse_stages(settings, events, dbt, "--full-refresh"),
            ],
            settings,
            events,
        )


@contextmanager
def _locked(settings: Settings, dbt: DbtWorker | None) -> Iterator[None]:
    """The run lock held, and `dbt` parsing the project meanwhile: only after the lock, so a
    run that is skipped never writes to dbt's target folder."""
    with run_lock(settings.warehouse_url):
        if dbt is not None:
            dbt.parse(settings.warehouse_url)
        yield


def _warehouse_stages(
    settings: Settings, events: RunEvents, dbt: DbtWorker | None, *dbt_args: str
) -> list[Stage]:
    """load -> dbt (in `dbt`'s process, if given) -> quarantine -> export: everything after
    the lake."""

    def load_stage() -> tuple[dict[str, int], str]:
        schemas = ", ".join(dataset.raw_schema for dataset in RAW_DATASETS)
        return load(settings.lake_url, settings.warehouse_url), schemas

    def dbt_stage() -> tuple[dict[str, int], str]:
        summary = dbt_build(
            settings.warehouse_url, *dbt_args, on_nodes=events.dbt_nodes, worker=dbt
        )
        return {}, f"{summary.passed} models, seeds and tests passed, {summary.warned} warned"

    def quarantine_stage() -> tuple[dict[str, int], str]:
        held = mirror_to_lake(settings.warehouse_url, settings.lake_url)
        if held:
            events.warning(
                f"{sum(held.values()):,} source versions are held in quarantine "
                f"({', '.join(f'{t} {n:,}' for t, n in held.items())}): "
                "see `totes quarantine list`"
            )
        return held, "versions held (`totes quarantine list`)" if held else "nothing held"

    def export_stage() -> tuple[dict[str, int], str]:
        return export(settings.warehouse_url, settings.processed_url), settings.processed_url

    return [
        ("load", load_stage),
        ("dbt", dbt_stage),
        ("quarantine", quarantine_stage),
        ("export", export_stage),
    ]


def _run_stages(
    stages: list[Stage], settings: Settings, events: RunEvents, stoppable: bool = False
) -> RunReport:
    """Run the stages in order. A `stoppable` run asked to stop (events.stop_requested) stops
    between two stages, never inside one: each stage commits its work, so the next run goes on
    from there as after any failure (a rebuild is not stoppable: its reset must be followed
    by its load)."""
    report = RunReport()
    for name, work_of_stage in stages:
        if stoppable and events.stop_requested():
            done = f"after the {report.stages[-1].name} stage" if report.stages else "at its start"
            raise RunStopped(
                f"stopped on request {done}, before the {name} stage; the next run goes on "
                "from there"
            )
        events.stage_started(name)
        started = time.perf_counter()
        # every stage is idempotent, so a transient failure re-runs the whole stage
        rows, detail = with_retries(
            work_of_stage, f"the {name} stage", settings.retry_seconds, events.retrying
        )
        result = StageResult(name, time.perf_counter() - started, rows, detail)
        report.stages.append(result)
        events.stage_finished(result)
    return report
