"""Hard deletes: the key check finds rows deleted in totesys; the warehouse marks them and keeps
their history. Checks run every TOTES_KEY_CHECK_EVERY runs (here 2)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ingestion.config import Settings
from ingestion.database import preflight
from ingestion.local_postgres import LocalPostgres
from ingestion.pipeline import RunReport, run
from ingestion.source.generate import init_source
from tests.conftest import execute, new_stack, query


@dataclass
class Deletes:
    settings: Settings
    runs: list[RunReport]
    payment_id: int
    sales_order_id: int
    deleted_after_run: list[list[tuple[object, ...]]]  # deleted_rows after each run


def deleted_rows(settings: Settings) -> list[tuple[object, ...]]:
    return query(
        settings.warehouse_url,
        "select source_table, source_id from deleted_rows order by source_table, source_id",
    )


@pytest.fixture(scope="module")
def deletes(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Deletes:
    settings = replace(new_stack(postgres, tmp_path_factory.mktemp("deletes")), key_check_every=2)
    preflight(settings)
    init_source(settings.source_url, scale=0.02, seed=13)
    url = settings.source_url
    runs, seen = [run(settings)], [deleted_rows(settings)]
    runs.append(run(settings))  # the first key check: nothing deleted yet
    seen.append(deleted_rows(settings))
    ((payment_id,),) = query(url, "select max(payment_id) from payment")
    # an order whose payment goes too: payments restrict deleting their transaction's order
    ((sales_order_id, transaction_id),) = query(
        url,
        "select sales_order_id, transaction_id from transaction where sales_order_id is not null "
        "and transaction_id not in (select transaction_id from payment where payment_id = %s) "
        "order by 1 limit 1",
        (payment_id,),
    )
    execute(
        url,
        f"delete from payment where payment_id in ({payment_id}, "
        f"(select payment_id from payment where transaction_id = {transaction_id}));"
        f"delete from sales_order where sales_order_id = {sales_order_id};",
    )
    for _ in range(2):  # the first run is no check run; the second checks
        runs.append(run(settings))
        seen.append(deleted_rows(settings))
    return Deletes(settings, runs, payment_id, sales_order_id, seen)


def test_deletes_are_found_on_the_next_key_check_only(deletes: Deletes) -> None:
    assert [len(rows) for rows in deletes.deleted_after_run] == [0, 0, 0, 3]
    assert [r.stage("extract").rows.get("source_keys", 0) > 0 for r in deletes.runs] == [
        False, True, False, True,
    ]  # fmt: skip
    assert ("payment", deletes.payment_id) in deletes.deleted_after_run[-1]
    assert ("sales_order", deletes.sales_order_id) in deletes.deleted_after_run[-1]


def test_a_deleted_row_keeps_its_history_and_its_dimension(deletes: Deletes) -> None:
    url = deletes.settings.warehouse_url
    payments = query(url, "select count(*) from fact_payment where payment_id = %s",
                     (deletes.payment_id,))  # fmt: skip
    orders = query(url, "select count(*) from fact_sales_order where sales_order_id = %s",
                   (deletes.sales_order_id,))  # fmt: skip
    assert payments[0][0] >= 1 and orders[0][0] >= 1


def test_current_views_leave_deleted_rows_out(deletes: Deletes) -> None:
    url = deletes.settings.warehouse_url
    assert query(url, "select 1 from fact_payment_current where payment_id = %s",
                 (deletes.payment_id,)) == []  # fmt: skip
    assert query(url, "select 1 from fact_sales_order_current where sales_order_id = %s",
                 (deletes.sales_order_id,)) == []  # fmt: skip
    ((current,),) = query(url, "select count(*) from fact_payment_current")
    ((source,),) = query(deletes.settings.source_url, "select count(*) from payment")
    assert current == source


def test_deleted_rows_are_exported_with_when_they_were_found(deletes: Deletes) -> None:
    exported = pq.read_table(
        Path(deletes.settings.processed_url) / "deleted_rows" / "deleted_rows.parquet"
    ).to_pylist()
    assert {(row["source_table"], row["source_id"]) for row in exported} == set(
        deletes.deleted_after_run[-1]
    )
    assert all(row["detected_at"] is not None for row in exported)
