"""Watermarks: a long source transaction commits rows stamped before rows already extracted."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from dlt.common.versioned_state import decompress_state

from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.extract import TABLES
from ingestion.extract.totesys import LOOKBACK
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.churn import churn, now_utc
from ingestion.local.source.generate import init_source
from ingestion.pipeline import RunReport, run
from tests.conftest import new_stack, query


@pytest.fixture(scope="module")
def late_commit(
    postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, int, list[RunReport]]:
    settings = new_stack(postgres, tmp_path_factory.mktemp("late"))
    preflight(settings)
    init_source(settings.source_url, scale=0.02, seed=9)
    reports = [run(settings)]
    # A long transaction stamps its row now, but commits only after newer rows were extracted.
    long_transaction = psycopg2.connect(settings.source_url)
    with long_transaction.cursor() as cur:
        cur.execute(
            "update address set phone = 'committed late', last_updated = %s where address_id = 1",
            (now_utc() - timedelta(seconds=2),),
        )
    churn(settings.source_url, orders=5, payments_paid=5, updates=0, seed=1)
    reports.append(run(settings))  # reads the churn: the cursor passes the open transaction
    long_transaction.commit()
    long_transaction.close()
    reports.append(run(settings))  # the look-back window finds the late row
    reports.append(run(settings))  # and nothing is read twice
    return settings, 1, reports


def test_a_row_committed_late_inside_the_window_is_extracted_once(
    late_commit: tuple[Settings, int, list[RunReport]],
) -> None:
    settings, address_id, (_, before_commit, after_commit, again) = late_commit
    assert "address" not in before_commit.stage("extract").rows
    assert after_commit.stage("extract").rows == {"address": 1}
    assert again.stage("extract").rows == {}
    phones = query(
        settings.warehouse_url,
        "select phone from totesys_raw.address where address_id = %s order by last_updated",
        (address_id,),
    )
    assert phones[-1] == ("committed late",) and len(phones) == 2


def test_the_late_version_reaches_the_dimension(
    late_commit: tuple[Settings, int, list[RunReport]],
) -> None:
    settings, address_id, _ = late_commit
    phone = query(
        settings.warehouse_url,
        "select phone from dim_location where location_id = %s",
        (address_id,),
    )
    assert phone == [("committed late",)]


def test_the_window_is_documented_in_the_readme() -> None:
    from tests.conftest import REPO

    minutes = int(LOOKBACK.total_seconds() // 60)
    assert f"{minutes} minutes" in (REPO / "README.md").read_text()


def test_the_remembered_versions_stay_within_one_window(
    late_commit: tuple[Settings, int, list[RunReport]],
) -> None:
    settings, _, _ = late_commit
    states = sorted((Path(settings.lake_url) / "totesys" / "_dlt_pipeline_state").glob("*.jsonl"))
    newest_state = max(states, key=lambda path: float(path.name.split("__")[1]))
    state = decompress_state(json.loads(newest_state.read_text())["state"])
    resources = state["sources"]["sql_database"]["resources"]
    for table in TABLES:
        window = resources[table]["window"]
        newest = datetime.fromisoformat(window["last_updated"])
        ((in_window,),) = query(
            settings.source_url,
            f"select count(*) from {table} where last_updated >= %s",
            (newest - LOOKBACK,),
        )
        assert len(window["versions"]) == in_window, table
        assert resources[table]["incremental"]["last_updated"]["unique_hashes"] == []  # dlt's: off
