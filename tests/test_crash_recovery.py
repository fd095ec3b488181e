"""The crash harness: SIGKILL `totes run` at many points, run again, and lose or double nothing.

Each kill point is a real child process killed just before the Nth call of a function in the
stage under attack. Kill points come in fours, so the later killed runs also meet whatever
the earlier ones left half-done. After them, one normal run must finish the work. Then every
version the source ever had (recorded after each churn) is in the lake and in each fact exactly
once, the processed zone holds exactly the warehouse's fact records, and at the end dims and
current state equal a reference warehouse built by one clean run over the same source.
"""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.lake.layout import Lake
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.churn import churn
from ingestion.local.source.generate import init_source
from ingestion.pipeline import run
from tests.conftest import (
    REPO,
    S3,
    lake_versions,
    new_stack,
    query,
    settings_environment,
    zone_dataset,
)
from tests.crash_child import KillableRuns
from tests.test_star_schema import dims_of_a_clean_run_match

FACTS = {  # fact -> (source table, record id)
    "fact_sales_order": ("sales_order", "sales_record_id"),
    "fact_purchase_orders": ("purchase_order", "purchase_record_id"),
    "fact_payment": ("payment", "payment_record_id"),
}
KILL_POINTS = [
    # before and during extract (dlt -> local lake)
    "ingestion.pipeline:extract:1",
    "ingestion.extract.source_keys:key_ranges:3",
    "fsspec.implementations.local:LocalFileSystem.put_file:1",
    "dlt.destinations.impl.filesystem.filesystem:FilesystemClient._store_current_state:1",
    "dlt.destinations.impl.filesystem.filesystem:FilesystemClient._store_load:1",
    "ingestion.lake.layout:Lake.manifest:1",  # dlt is done: writing the load's manifest
    # compacted file written, the loads' own files not yet deleted
    "ingestion.lake.compaction:_delete:1",
    # between extract and load, and during load (lake -> totesys_raw)
    "ingestion.pipeline:load:1",
    "ingestion.lake.layout:Lake.read_file:1",
    "dlt.destinations._adbc_jobs:AdbcParquetCopyJob.run:1",
    "dlt.destinations._adbc_jobs:AdbcParquetCopyJob.run:3",
    "dlt.destinations.impl.postgres.postgres:PostgresClient.complete_load:1",
    # between load and dbt, and during dbt
    "ingestion.pipeline:dbt_build:1",
    "dbt.adapters.sql.connections:SQLConnectionManager.add_query:15",
    "dbt.adapters.sql.connections:SQLConnectionManager.add_query:100",
    # between dbt and quarantine, and during quarantine (warehouse -> lake quarantine area)
    "ingestion.pipeline:mirror_to_lake:1",
    "ingestion.export.processed:ParquetZone.replace_snapshot:5",
    # between quarantine and export, and during export (warehouse -> processed zone)
    "ingestion.pipeline:export:1",
    "ingestion.export.processed:ParquetZone.write_dim_parts:2",  # dims written: whole, or merged
    "ingestion.lake.storage:_publish:2",  # a file written beside its target, not yet renamed
    "ingestion.export.processed:ParquetZone.merge_into_days:1",
    "ingestion.export.processed:ParquetZone.merge_into_days:2",
    "ingestion.export.processed:ParquetZone.record_exported:1",
]


KILLS_IN_A_ROW = 4


def source_versions(settings: Settings) -> dict[str, set[tuple[object, ...]]]:
    return {
        fact: set(query(settings.source_url, f"select {table}_id, last_updated from {table}"))
        for fact, (table, _) in FACTS.items()
    }


def fact_versions(settings: Settings, fact: str) -> list[tuple[object, ...]]:
    table, _ = FACTS[fact]
    return query(
        settings.warehouse_url,
        f"select {table}_id, last_updated_date + last_updated_time from {fact}",
    )


def exported_record_ids(settings: Settings, fact: str) -> list[int]:
    _, record_id = FACTS[fact]
    by_date = ds.partitioning(pa.schema([("last_updated_date", pa.date32())]), flavor="hive")
    data = zone_dataset(settings.processed_url, fact, partitioning=by_date).to_table([record_id])
    return sorted(data.column(0).to_pylist())


def check_every_fact(
    settings: Settings, ever: dict[str, set[tuple[object, ...]]], attacked: list[str]
) -> int:
    """Each fact, the lake and the processed zone hold every version ever made, once; returns
    how many fact versions were checked."""
    checked = 0
    for fact, (table, record_id) in FACTS.items():
        versions = fact_versions(settings, fact)
        assert len(versions) == len(set(versions)), f"{fact} doubled a version: {attacked}"
        assert set(versions) == ever[fact], f"{fact} lost or invented a version: {attacked}"
        in_lake = lake_versions(settings.lake_url, table)
        assert sorted(in_lake) == sorted(ever[fact]), f"lake {fact}: {attacked}"
        ids = query(settings.warehouse_url, f"select {record_id} from {fact} order by 1")
        exported = exported_record_ids(settings, fact)
        assert exported == [r[0] for r in ids], f"{fact} export: {attacked}"
        checked += len(versions)
    return checked


def attack(
    postgres: LocalPostgres, folder: Path, kill_points: list[str], s3: S3 | None = None
) -> None:
    """Kill `totes run` at each point (in fours), let a normal run finish, check every fact."""
    # a key check on every run, so the harness attacks it too
    settings = replace(new_stack(postgres, folder / "attacked", s3), key_check_every=1)
    preflight(settings)
    init_source(settings.source_url, scale=0.01, seed=21)
    run(settings)
    ever = source_versions(settings)  # every version the source has ever had
    checked = 0
    with KillableRuns(settings_environment(settings, PYTHONPATH=str(REPO)), folder) as runs:
        # Kill points in fours: each killed run meets the mess the ones before it left behind.
        for number in range(0, len(kill_points), KILLS_IN_A_ROW):
            churn(settings.source_url, orders=3, payments_paid=2, updates=2, seed=number)
            for fact, versions in source_versions(settings).items():
                ever[fact] |= versions
            attacked = kill_points[number : number + KILLS_IN_A_ROW]
            for kill_at in attacked:
                killed = runs.killed(kill_at)
                assert killed.returncode == -signal.SIGKILL, f"{kill_at} never reached: {killed}"
            run(settings)  # the next scheduled run finishes the work
            checked += check_every_fact(settings, ever, attacked)

    lake = Lake(settings.lake_url)  # a load whose manifest a kill skipped got it later
    manifests = lake.fs.ls(f"{lake.root}/_manifests", detail=False)
    assert sorted(Path(m).stem for m in manifests) == sorted(lake.completed_loads())

    if s3 is None:  # kills on S3 hit uploads only: the lake and export checks above see them
        reference = dims_of_a_clean_run_match(postgres, settings, folder / "reference")
        for fact in FACTS:
            current = f"select * from {fact}_current"
            assert {r[1:] for r in query(settings.warehouse_url, current)} == {
                r[1:] for r in query(reference.warehouse_url, current)
            }, fact
    print(
        f"\ncrash harness: {len(kill_points)} kill points, {checked} fact versions checked, "
        "0 mismatches"
    )


# Two halves in two classes: `pytest -n 2 --dist loadscope` runs them side by side.
HALF = KILL_POINTS.index("ingestion.pipeline:dbt_build:1")


class TestKillsDuringExtractAndLoad:
    def test_killed_runs_followed_by_a_normal_run_lose_and_double_nothing(
        self, postgres: LocalPostgres, tmp_path: Path
    ) -> None:
        attack(postgres, tmp_path, KILL_POINTS[:HALF])


class TestKillsDuringDbtQuarantineAndExport:
    def test_killed_runs_followed_by_a_normal_run_lose_and_double_nothing(
        self, postgres: LocalPostgres, tmp_path: Path
    ) -> None:
        attack(postgres, tmp_path, KILL_POINTS[HALF:])


class TestKillsDuringUploadsToS3:
    """The same promise with both zones on S3 (moto's server): uploads cut short by a kill."""

    def test_killed_runs_followed_by_a_normal_run_lose_and_double_nothing(
        self, postgres: LocalPostgres, s3: S3, tmp_path: Path
    ) -> None:
        attack(
            postgres,
            tmp_path,
            [
                # dlt uploading a lake load's files, one PUT each
                "dlt.destinations.impl.filesystem.filesystem:FilesystemLoadJob.run:2",
                "ingestion.lake.storage:write_atomically:1",  # the load's manifest
                "ingestion.lake.storage:write_atomically:2",  # a compacted day file
                # export: changed dims, fact days
                "ingestion.export.processed:ParquetZone._write_parquet:4",
            ],
            s3,
        )
