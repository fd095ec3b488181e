"""Hard deletes: the key check finds rows deleted in totesys; the warehouse marks them and keeps
their history. Checks run every TOTES_KEY_CHECK_EVERY runs (here 2)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import psycopg2
import pyarrow.parquet as pq
import pytest

from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.generate import init_source
from ingestion.pipeline import RunReport, run
from tests.conftest import execute, new_stack, query


@dataclass
class Deletes:
    settings: Settings
    runs: list[RunReport]
    payment_id: int
    sales_order_id: int
    sales_order: dict[str, object]  # the deleted order's row, to restore it
    deleted_after_run: list[list[tuple[object, ...]]]  # deleted_rows after each run
    oids_after_run: list[list[tuple[object, ...]]]  # deleted_rows' and the current views'


def deleted_rows(settings: Settings) -> list[tuple[object, ...]]:
    return query(
        settings.warehouse_url,
        "select source_table, source_id from deleted_rows order by source_table, source_id",
    )


def relation_oids(settings: Settings) -> list[tuple[object, ...]]:
    return query(
        settings.warehouse_url,
        "select relname, oid from pg_class where relnamespace = 'public'::regnamespace "
        "and (relname = 'deleted_rows' or relname like 'fact\\_%\\_current') order by 1",
    )


def exported_deleted_rows(settings: Settings) -> set[tuple[object, ...]]:
    path = Path(settings.processed_url) / "deleted_rows"  # its part files
    return {(row["source_table"], row["source_id"]) for row in pq.read_table(path).to_pylist()}


@pytest.fixture(scope="module")
def deletes(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Deletes:
    settings = replace(new_stack(postgres, tmp_path_factory.mktemp("deletes")), key_check_every=2)
    preflight(settings)
    init_source(settings.source_url, scale=0.02, seed=13)
    url = settings.source_url
    runs: list[RunReport] = []
    seen: list[list[tuple[object, ...]]] = []
    oids: list[list[tuple[object, ...]]] = []

    def run_and_look() -> None:
        runs.append(run(settings))
        seen.append(deleted_rows(settings))
        oids.append(relation_oids(settings))

    run_and_look()
    run_and_look()  # the first key check: nothing deleted yet
    ((payment_id,),) = query(url, "select max(payment_id) from payment")
    # an order whose payment goes too: payments restrict deleting their transaction's order
    ((sales_order_id, transaction_id),) = query(
        url,
        "select sales_order_id, transaction_id from transaction where sales_order_id is not null "
        "and transaction_id not in (select transaction_id from payment where payment_id = %s) "
        "order by 1 limit 1",
        (payment_id,),
    )
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("select * from sales_order where sales_order_id = %s", (sales_order_id,))
        sales_order = dict(zip([c.name for c in cur.description], cur.fetchone(), strict=True))
    conn.close()
    execute(
        url,
        f"delete from payment where payment_id in ({payment_id}, "
        f"(select payment_id from payment where transaction_id = {transaction_id}));"
        f"delete from sales_order where sales_order_id = {sales_order_id};",
    )
    for _ in range(2):  # the first run is no check run; the second checks
        run_and_look()
    return Deletes(settings, runs, payment_id, sales_order_id, sales_order, seen, oids)


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
    exported = pq.read_table(Path(deletes.settings.processed_url) / "deleted_rows").to_pylist()
    assert {(row["source_table"], row["source_id"]) for row in exported} == set(
        deletes.deleted_after_run[-1]
    )
    assert all(row["detected_at"] is not None for row in exported)


def test_runs_update_deleted_rows_in_place_so_the_current_views_are_never_dropped(
    deletes: Deletes,
) -> None:
    """A replaced deleted_rows took the current views with it (drop ... cascade) until the
    build recreated them: the payments API and the dashboard failed for seconds every run."""
    assert [name for name, _ in deletes.oids_after_run[0]] == [
        "deleted_rows", "fact_payment_current", "fact_purchase_orders_current",
        "fact_sales_order_current",
    ]  # fmt: skip
    assert all(oids == deletes.oids_after_run[0] for oids in deletes.oids_after_run)


# Last in this module: it changes the source and runs again.
def test_a_row_restored_in_totesys_leaves_deleted_rows_and_the_export(deletes: Deletes) -> None:
    """The only deleted order comes back with its id: no row is left to merge by, so the
    export must notice the row that went (its counts) and write deleted_rows whole."""
    settings = deletes.settings
    restored = {**deletes.sales_order, "last_updated": datetime.now()}
    columns, values = ", ".join(restored), ", ".join(["%s"] * len(restored))
    execute(
        settings.source_url,
        f"insert into sales_order ({columns}) values ({values})",
        tuple(restored.values()),
    )
    for _ in range(2):  # the next key check finds it again
        run(settings)
    expected = set(deletes.deleted_after_run[-1]) - {("sales_order", deletes.sales_order_id)}
    assert {table for table, _ in expected} == {"payment"}
    assert set(deleted_rows(settings)) == expected
    assert exported_deleted_rows(settings) == expected
    current = "select 1 from fact_sales_order_current where sales_order_id = %s"
    assert query(settings.warehouse_url, current, (deletes.sales_order_id,)) == [(1,)]
    assert relation_oids(settings) == deletes.oids_after_run[0]
