"""Scenario: the complete star schema after a first run, targeted source changes and a second run.

Each test pins down one promise of shared/spec/warehouse.md: names and types, history in the
facts, latest state in the dims, and no change without a source change.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from dbt.cli.main import dbtRunnerResult

from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.export.processed import export
from ingestion.extract.fx import newest_publishable_day
from ingestion.extract.fx_stub import euro_rate, is_publishing_day, serving
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.churn import now_utc
from ingestion.local.source.generate import init_source
from ingestion.ops.run_events import RunEvents
from ingestion.pipeline import run
from ingestion.transform.dbt_build import dbt_build, run_dbt
from tests.conftest import columns_by_table, create_database, execute, new_stack, query

INT, DATE, TIME, VC, BOOL = (
    "integer",
    "date",
    "time without time zone",
    "character varying",
    "boolean",
)
NUM, VC3 = "numeric(10,2)", "character varying(3)"
NN, NULL = False, True
# shared/spec/warehouse.md, column by column: (name, type, nullable)
SPEC: dict[str, list[tuple[str, str, bool]]] = {
    "dim_date": [
        ("date_id", DATE, NN), ("year", INT, NN), ("month", INT, NN), ("day", INT, NN),
        ("day_of_week", INT, NN), ("day_name", VC, NN), ("month_name", VC, NN),
        ("quarter", INT, NN),
    ],
    "dim_staff": [
        ("staff_id", INT, NN), ("first_name", VC, NN), ("last_name", VC, NN),
        ("department_name", VC, NN), ("location", VC, NULL), ("email_address", VC, NN),
    ],
    "dim_location": [
        ("location_id", INT, NN), ("address_line_1", VC, NN), ("address_line_2", VC, NULL),
        ("district", VC, NULL), ("city", VC, NN), ("postal_code", VC, NN), ("country", VC, NN),
        ("phone", VC, NN),
    ],
    "dim_currency": [
        ("currency_id", INT, NN), ("currency_code", VC3, NN), ("currency_name", VC, NN),
    ],
    "dim_design": [
        ("design_id", INT, NN), ("design_name", VC, NN), ("file_location", VC, NN),
        ("file_name", VC, NN),
    ],
    "dim_counterparty": [
        ("counterparty_id", INT, NN), ("counterparty_legal_name", VC, NN),
        ("counterparty_legal_address_line_1", VC, NN),
        ("counterparty_legal_address_line_2", VC, NULL),
        ("counterparty_legal_district", VC, NULL), ("counterparty_legal_city", VC, NN),
        ("counterparty_legal_postal_code", VC, NN), ("counterparty_legal_country", VC, NN),
        ("counterparty_legal_phone_number", VC, NN),
    ],
    "dim_payment_type": [("payment_type_id", INT, NN), ("payment_type_name", VC, NN)],
    "dim_transaction": [
        ("transaction_id", INT, NN), ("transaction_type", VC, NN), ("sales_order_id", INT, NULL),
        ("purchase_order_id", INT, NULL),
    ],
    "fact_sales_order": [
        ("sales_record_id", INT, NN), ("sales_order_id", INT, NN), ("created_date", DATE, NN),
        ("created_time", TIME, NN), ("last_updated_date", DATE, NN),
        ("last_updated_time", TIME, NN), ("sales_staff_id", INT, NN),
        ("counterparty_id", INT, NN), ("units_sold", INT, NN), ("unit_price", NUM, NN),
        ("currency_id", INT, NN), ("design_id", INT, NN), ("agreed_payment_date", DATE, NN),
        ("agreed_delivery_date", DATE, NN), ("agreed_delivery_location_id", INT, NN),
    ],
    "fact_purchase_orders": [
        ("purchase_record_id", INT, NN), ("purchase_order_id", INT, NN),
        ("created_date", DATE, NN), ("created_time", TIME, NN), ("last_updated_date", DATE, NN),
        ("last_updated_time", TIME, NN), ("staff_id", INT, NN), ("counterparty_id", INT, NN),
        ("item_code", VC, NN), ("item_quantity", INT, NN), ("item_unit_price", NUM, NN),
        ("currency_id", INT, NN), ("agreed_delivery_date", DATE, NN),
        ("agreed_payment_date", DATE, NN), ("agreed_delivery_location_id", INT, NN),
    ],
    "fact_payment": [
        ("payment_record_id", INT, NN), ("payment_id", INT, NN), ("created_date", DATE, NN),
        ("created_time", TIME, NN), ("last_updated_date", DATE, NN),
        ("last_updated_time", TIME, NN), ("transaction_id", INT, NN),
        ("counterparty_id", INT, NN), ("payment_amount", NUM, NN), ("currency_id", INT, NN),
        ("payment_type_id", INT, NN), ("paid", BOOL, NN), ("payment_date", DATE, NN),
    ],
}  # fmt: skip
FACTS = {
    "fact_sales_order": "sales_record_id",
    "fact_purchase_orders": "purchase_record_id",
    "fact_payment": "payment_record_id",
}


@dataclass
class Changes:
    """The source rows the scenario changed before its second run."""

    payment_id: int
    address_id: int
    counterparty_id: int
    department_id: int
    staff_id: int


# public's tables the spec does not list (see test_deletes and test_fx)
BEYOND_SPEC = "('deleted_rows', 'dim_fx_rate', 'fact_delivery_event')"


# A raw row as the load stage would bring it: in a lake load newer than any loaded so far.
NEXT_LAKE_LOAD_ID = (
    "(select (max(_lake_load_id::numeric) + 1)::text from ("
    + " union all ".join(
        f"select _lake_load_id from totesys_raw.{table}"
        for table in ("payment", "design", "currency")
    )
    + ") as loaded)"
)


def mart_fingerprints(url: str) -> dict[str, str]:
    """A hash of each star table's full content, to prove a table did not change at all."""
    prints = {}
    for table in [*SPEC, "dim_fx_rate"]:
        rows = query(url, f"select * from {table} order by 1, 2")
        prints[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return prints


def dims_of_a_clean_run_match(
    postgres: LocalPostgres, settings: Settings, folder: Path
) -> Settings:
    """Build a reference from the same source in one clean run (new warehouse, lake and
    processed zone), assert its dims equal those of `settings`, and return it."""
    reference = replace(
        settings,
        warehouse_url=create_database(postgres, "reference"),
        lake_url=str(folder / "lake"),
        processed_url=str(folder / "processed"),
    )
    run(reference)
    dims = [table for table in SPEC if table.startswith("dim_")]
    ours, clean = (
        mart_fingerprints(settings.warehouse_url),
        mart_fingerprints(reference.warehouse_url),
    )
    assert {t: ours[t] for t in dims} == {t: clean[t] for t in dims}
    return reference


def facts_without_record_ids(url: str) -> dict[str, set[tuple[object, ...]]]:
    result = {}
    for fact, record_id in FACTS.items():
        rows = query(url, f"select * from {fact}")
        columns = [c for c, _, _ in SPEC[fact]]
        keep = [i for i, c in enumerate(columns) if c != record_id]
        result[fact] = {tuple(row[i] for i in keep) for row in rows}
    return result


@pytest.fixture(scope="module")
def warehouse(
    postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, Changes]:
    settings = new_stack(postgres, tmp_path_factory.mktemp("star"))
    preflight(settings)
    init_source(settings.source_url, scale=0.05, seed=5)
    run(settings)
    src = settings.source_url
    at = now_utc()
    ((payment_id,),) = query(src, "select min(payment_id) from payment where not paid")
    ((counterparty_id, address_id),) = query(
        src, "select counterparty_id, legal_address_id from counterparty order by 1 limit 1"
    )
    ((staff_id, department_id),) = query(
        src, "select staff_id, department_id from staff order by 1 limit 1"
    )
    execute(
        src,
        f"update payment set paid = true, last_updated = '{at}' where payment_id = {payment_id};"
        f"update address set city = 'Changed City', last_updated = '{at}' "
        f"where address_id = {address_id};"
        f"update department set location = 'Changed Location', last_updated = '{at}' "
        f"where department_id = {department_id};",
    )
    run(settings)
    return settings, Changes(payment_id, address_id, counterparty_id, department_id, staff_id)


def test_star_tables_names_columns_and_types_match_the_spec(
    warehouse: tuple[Settings, Changes],
) -> None:
    settings, _ = warehouse
    rows = query(
        settings.warehouse_url,
        "select c.table_name, c.column_name, "
        "  case when c.data_type = 'numeric' "
        "    then format('numeric(%s,%s)', c.numeric_precision, c.numeric_scale) "
        "  when c.character_maximum_length is not null "
        "    then format('%s(%s)', c.data_type, c.character_maximum_length) "
        "  else c.data_type end, "
        "  c.is_nullable = 'YES' "
        "from information_schema.columns c join information_schema.tables t "
        "  using (table_schema, table_name) "
        "where c.table_schema = 'public' and t.table_type = 'BASE TABLE' "
        f"and c.table_name not in {BEYOND_SPEC} "
        "order by c.table_name, c.ordinal_position",
    )
    actual = columns_by_table(rows)
    assert actual == SPEC


def test_every_star_table_has_its_primary_key(warehouse: tuple[Settings, Changes]) -> None:
    settings, _ = warehouse
    rows = query(
        settings.warehouse_url,
        "select tc.table_name, kcu.column_name from information_schema.table_constraints tc "
        "join information_schema.key_column_usage kcu using (constraint_schema, constraint_name) "
        "where tc.table_schema = 'public' and tc.constraint_type = 'PRIMARY KEY' "
        f"and tc.table_name not in {BEYOND_SPEC}",
    )
    assert dict(rows) == {table: columns[0][0] for table, columns in SPEC.items()}


def test_a_full_build_analyzes_the_tables_it_builds(warehouse: tuple[Settings, Changes]) -> None:
    # statistics at once, not when autovacuum comes by: the next builds plan lookups on them.
    # analyze_count counts ANALYZE statements only (autovacuum's are autoanalyze_count); these
    # tables were made by the first build and are appended to since
    settings, _ = warehouse
    rows = query(
        settings.warehouse_url,
        "select relname, analyze_count from pg_stat_user_tables where schemaname = 'public' "
        "and relname in ('fact_sales_order', 'fact_purchase_orders', 'fact_payment', "
        "'dim_transaction') order by 1",
    )
    assert [table for table, analyzed in rows if analyzed >= 1] == [
        "dim_transaction", "fact_payment", "fact_purchase_orders", "fact_sales_order",
    ]  # fmt: skip


def test_a_payment_flipped_to_paid_appends_a_second_fact_version(
    warehouse: tuple[Settings, Changes],
) -> None:
    settings, changes = warehouse
    versions = query(
        settings.warehouse_url,
        "select paid from fact_payment where payment_id = %s order by payment_record_id",
        (changes.payment_id,),
    )
    assert versions == [(False,), (True,)]
    current = query(
        settings.warehouse_url,
        "select paid from fact_payment_current where payment_id = %s",
        (changes.payment_id,),
    )
    assert current == [(True,)]


def test_an_address_change_reaches_dim_location_and_dim_counterparty(
    warehouse: tuple[Settings, Changes],
) -> None:
    settings, changes = warehouse
    location = query(
        settings.warehouse_url,
        "select city from dim_location where location_id = %s",
        (changes.address_id,),
    )
    counterparty = query(
        settings.warehouse_url,
        "select counterparty_legal_city from dim_counterparty where counterparty_id = %s",
        (changes.counterparty_id,),
    )
    assert location == counterparty == [("Changed City",)]


def test_a_department_change_reaches_dim_staff(warehouse: tuple[Settings, Changes]) -> None:
    settings, changes = warehouse
    staff = query(
        settings.warehouse_url,
        "select location from dim_staff where staff_id = %s",
        (changes.staff_id,),
    )
    assert staff == [("Changed Location",)]


def test_dims_hold_one_row_per_natural_key_and_dim_date_has_no_gaps(
    warehouse: tuple[Settings, Changes],
) -> None:
    settings, _ = warehouse
    wh, src = settings.warehouse_url, settings.source_url
    for dim, table in (("dim_location", "address"), ("dim_transaction", "transaction")):
        assert query(wh, f"select count(*) from {dim}") == query(
            src, f"select count(*) from {table}"
        )
    ((days, span),) = query(wh, "select count(*), max(date_id) - min(date_id) + 1 from dim_date")
    assert days == span
    ((first, last),) = query(wh, "select min(date_id), max(date_id) from dim_date")
    ((earliest, latest),) = query(
        src, "select min(created_at)::date, max(agreed_delivery_date)::date from sales_order"
    )
    assert first <= earliest and latest <= last


def test_a_run_with_no_source_change_changes_no_star_table(
    warehouse: tuple[Settings, Changes],
) -> None:
    settings, _ = warehouse
    before = mart_fingerprints(settings.warehouse_url)
    run(settings)
    assert mart_fingerprints(settings.warehouse_url) == before


def test_replaying_the_same_raw_data_adds_nothing(warehouse: tuple[Settings, Changes]) -> None:
    settings, _ = warehouse
    before = mart_fingerprints(settings.warehouse_url)
    for table in ("payment", "sales_order", "purchase_order", "address", "department"):
        # a replayed lake load: every raw row a second time, tagged with another lake load
        execute(
            settings.warehouse_url,
            f"create temp table replay as select * from totesys_raw.{table};"
            "update replay set _lake_load_id = '9999999999.0';"
            f"insert into totesys_raw.{table} select * from replay;",
        )
    dbt_build(settings.warehouse_url)
    assert mart_fingerprints(settings.warehouse_url) == before


def test_only_a_complete_build_moves_the_build_window(
    warehouse: tuple[Settings, Changes],
) -> None:
    settings, _ = warehouse
    wh = settings.warehouse_url
    window = "select built_through, pending from totesys_raw._dbt_build_window"
    ((built_through, pending),) = query(wh, window)
    assert built_through == pending  # the fixture's runs were complete builds
    execute(
        wh,
        "create temp table newer as select * from totesys_raw.design limit 1;"
        f"update newer set last_updated = now(), _lake_load_id = {NEXT_LAKE_LOAD_ID};"
        "insert into totesys_raw.design select * from newer;",
    )
    dbt_build(wh, "--select", "dim_design")  # a part of the project: the mark stays
    ((still, newest),) = query(wh, window)
    assert (still, newest) == (built_through, built_through + 1)
    dbt_build(wh)
    assert query(wh, window) == [(newest, newest)]


def test_a_build_leaves_unchanged_views_in_place_and_a_full_refresh_replaces_them(
    warehouse: tuple[Settings, Changes],
) -> None:
    settings, _ = warehouse
    oid = "select 'totesys_staging.stg_totesys__payment'::regclass::oid"
    before = query(settings.warehouse_url, oid)
    dbt_build(settings.warehouse_url)
    assert query(settings.warehouse_url, oid) == before
    dbt_build(settings.warehouse_url, "--full-refresh")
    assert query(settings.warehouse_url, oid) != before


def test_a_fact_key_missing_from_its_dimension_fails_the_relationships_test(
    warehouse: tuple[Settings, Changes],
) -> None:
    settings, _ = warehouse
    wh = settings.warehouse_url
    orphan = "payment_record_id > 1000000000"
    execute(
        wh,
        "create temp table orphan as select * from fact_payment limit 1;"
        "update orphan set payment_record_id = 1000000001, payment_id = -1,"
        " counterparty_id = -1, payment_date = '1900-01-01';"
        "insert into fact_payment select * from orphan;",
    )
    try:
        result = run_dbt(wh, "test", "--select", "fact_payment_references_dimensions")
        assert failing_rows(result) == [2]  # counterparty_id and payment_date
    finally:
        execute(wh, f"delete from fact_payment where {orphan}")
    assert run_dbt(wh, "test", "--select", "fact_payment_references_dimensions").success


def test_a_staging_version_without_last_updated_fails_the_identity_test(
    warehouse: tuple[Settings, Changes],
) -> None:
    settings, _ = warehouse
    wh = settings.warehouse_url
    test = "staged_versions_are_identified"
    execute(
        wh,
        "create temp table undated as select * from totesys_raw.design limit 1;"
        "update undated set last_updated = null, design_id = -1;"
        "insert into totesys_raw.design select * from undated;",
    )
    try:
        result = run_dbt(wh, "test", "--select", test)
        assert failing_rows(result) == [1]
    finally:
        execute(wh, "delete from totesys_raw.design where design_id = -1")
    assert run_dbt(wh, "test", "--select", test).success


def failing_rows(result: dbtRunnerResult) -> list[int | None]:
    """The failing rows of each test a `dbt test` ran (its hooks are results too)."""
    return [r.failures for r in result.result if r.node.resource_type == "test"]


def test_dbt_unit_tests_pass(warehouse: tuple[Settings, Changes]) -> None:
    settings, _ = warehouse
    result = run_dbt(settings.warehouse_url, "test", "--select", "test_type:unit")
    assert result.success
    assert len(result.result) >= 5


def test_example_analyses_answer_from_the_warehouse(warehouse: tuple[Settings, Changes]) -> None:
    settings, _ = warehouse
    result = run_dbt(settings.warehouse_url, "compile", "--select", "resource_type:analysis")
    assert result.success
    target = Path(os.environ["DBT_TARGET_PATH"])  # set per test worker by conftest
    compiled = sorted((target / "compiled" / "totes" / "analyses").glob("*.sql"))
    assert len(compiled) == 5
    for analysis in compiled:
        assert query(settings.warehouse_url, analysis.read_text()), analysis.name


def stub_rate(currency: str, day: date, today: date | None = None) -> tuple[date, Decimal]:
    """The stub's rate in effect on `day` (units per pound), and the day it was published:
    the last publishing day up to `day`, and never after `today` (by default the real date)."""
    if currency == "GBP":
        return day, Decimal(1)
    day = min(day, today or date.today())
    while not is_publishing_day(day):
        day -= timedelta(1)
    return day, Decimal(str(round(euro_rate(currency, day) / euro_rate("GBP", day), 5)))


def test_dim_fx_rate_carries_the_last_published_rate_over_weekends_and_holidays(
    warehouse: tuple[Settings, Changes],
) -> None:
    """The warehouse's rates came from the stub (TOTES_FX_URL is not set), so they can be
    checked day by day against it: each day shows the last rate published on or before it."""
    settings, _ = warehouse
    # the stub's "today" when the fixture fetched: the clock may have passed midnight since
    ((fetched_through,),) = query(
        settings.warehouse_url, "select max(rate_date) from fx_raw.fx_rate"
    )
    rows = query(
        settings.warehouse_url,
        "select date_id, currency_code, units_per_gbp, gbp_per_unit, published_on from dim_fx_rate",
    )
    currencies = query(settings.warehouse_url, "select currency_code from dim_currency")
    assert {row[1] for row in rows} == {code for (code,) in currencies}
    for day, currency, units, pounds, published_on in rows:
        expected = stub_rate(currency, day, today=fetched_through)
        assert (published_on, units) == expected, (day, currency)
        assert abs(pounds * units - 1) < Decimal("1e-8")
    # spelled out: a weekend after a published Friday shows Friday's rate
    weekend_days = [
        (day, published_on)
        for day, currency, _, _, published_on in rows
        if currency != "GBP" and day.isoweekday() in (6, 7) and day <= fetched_through
        if is_publishing_day(day - timedelta(day.isoweekday() - 5))
    ]
    assert len(weekend_days) > 100
    assert all(
        published_on == day - timedelta(day.isoweekday() - 5) for day, published_on in weekend_days
    )


def test_revenue_in_gbp_converts_each_order_at_its_days_rate(
    warehouse: tuple[Settings, Changes],
) -> None:
    settings, _ = warehouse
    name = "monthly_revenue_by_currency_and_country"
    assert run_dbt(settings.warehouse_url, "compile", "--select", name).success
    analysis = Path(os.environ["DBT_TARGET_PATH"]) / f"compiled/totes/analyses/{name}.sql"
    by_currency = query(
        settings.warehouse_url,
        "select currency_code, sum(revenue), sum(revenue_gbp), count(*) "
        f"from ({analysis.read_text()}) as monthly group by currency_code",
    )
    orders = query(
        settings.warehouse_url,
        "select c.currency_code, s.units_sold * s.unit_price, s.created_date "
        "from fact_sales_order_current as s join dim_currency as c using (currency_id)",
    )
    assert {currency for currency, *_ in by_currency} == {"GBP", "EUR", "USD"}
    for currency, revenue, revenue_gbp, months in by_currency:
        expected = sum(
            amount / stub_rate(code, day)[1] for code, amount, day in orders if code == currency
        )
        # each month's figure is rounded to pence
        assert abs(revenue_gbp - expected) <= Decimal("0.005") * months, currency
        if currency == "GBP":
            assert revenue_gbp == revenue


class Warnings(RunEvents):
    def __init__(self) -> None:
        self.said: list[str] = []

    def warning(self, message: str) -> None:
        self.said.append(message)


def test_a_failing_fx_api_warns_and_the_run_goes_on(
    warehouse: tuple[Settings, Changes],
) -> None:
    """With the newest publishable day's rates not in the warehouse, a run asks the API; it is
    down, so the run warns, builds everything else, and the dim carries the day before forward."""
    settings, _ = warehouse
    url = settings.warehouse_url
    # The stub publishes today's rates at any hour, a run asks for a day only once it can be out
    # (before 16:00 UTC, the working day before): drop every day from that one on.
    ((newest,),) = query(url, "select max(rate_date) from fx_raw.fx_rate")
    missing = min(newest, newest_publishable_day(datetime.now(UTC)))
    kept = query(url, "select * from fx_raw.fx_rate where rate_date >= %s", (missing,))
    execute(url, "delete from fx_raw.fx_rate where rate_date >= %s", (missing,))
    with serving() as gone:
        dead_url = gone.url  # closed once the block ends: connections are refused
    events = Warnings()
    report = run(replace(settings, fx_url=dead_url), events)
    assert report.stage("fx").rows == {}
    assert [stage.name for stage in report.stages][-3:] == ["dbt", "quarantine", "export"]
    (warning,) = events.said
    assert warning.startswith(f"FX rates not fetched: fetching FX rates from {dead_url}")
    assert "Connection refused" in warning and "carries its last rates forward" in warning
    carried = query(
        url, "select distinct published_on from dim_fx_rate where date_id = %s and "
        "currency_code <> 'GBP'", (missing,),
    )  # fmt: skip
    assert carried == [(stub_rate("EUR", missing - timedelta(1))[0],)]
    # put the days back, as the lake still has them, and with them the dim
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        columns = ", ".join(["%s"] * len(kept[0]))
        cursor.executemany(f"insert into fx_raw.fx_rate values ({columns})", kept)
    dbt_build(url, "--select", "dim_fx_rate")


def test_full_refresh_rebuilds_the_same_fact_versions_and_the_export_follows(
    warehouse: tuple[Settings, Changes],
) -> None:
    settings, _ = warehouse
    wh = settings.warehouse_url

    # A version that reaches the fact after versions of later lake loads, as one released from
    # quarantine does: incremental builds append it last, a full refresh numbers it by its lake
    # load, first, so the record ids really change. Raw rows come in new lake loads, as the load
    # stage brings them: the late payment version (held: currency 99 is unknown), a later
    # version of another payment, then currency 99, which releases the late one.
    def load_raw(table: str, where: str, change: str) -> None:
        execute(
            wh,
            f"create temp table new_version as select * from totesys_raw.{table} where {where} "
            "limit 1;"
            f"update new_version set {change}, _lake_load_id = {NEXT_LAKE_LOAD_ID};"
            f"insert into totesys_raw.{table} select * from new_version;"
            "drop table new_version;",
        )

    first, last = (
        f"payment_id = (select {end}(payment_id) from totesys_raw.payment)"
        for end in ("min", "max")
    )
    load_raw("payment", first, "last_updated = last_updated + interval '1 ms', currency_id = 99")
    dbt_build(wh)
    held = "select count(*) from totesys_quarantine.quarantined_rows where status = 'held'"
    assert query(wh, held) == [(1,)]
    load_raw("payment", last, "last_updated = last_updated + interval '1 second'")
    dbt_build(wh)
    load_raw("currency", "currency_code = 'EUR'", "currency_id = 99, currency_code = 'JPY'")
    dbt_build(wh)
    assert query(wh, held) == [(0,)]
    export(wh, settings.processed_url)
    incremental = facts_without_record_ids(wh)
    numbering_before = exported_versions(settings, "fact_payment", "payment_record_id")

    dbt_build(wh, "--full-refresh")
    assert facts_without_record_ids(wh) == incremental
    export(wh, settings.processed_url)
    renumbered = query(
        wh,
        "select payment_record_id, payment_id, last_updated_date, last_updated_time "
        "from fact_payment order by 1",
    )
    assert renumbered != numbering_before  # the late version moved
    assert exported_versions(settings, "fact_payment", "payment_record_id") == renumbered


def exported_versions(settings: Settings, fact: str, record_id: str) -> list[tuple[object, ...]]:
    """(record id, source id, last_updated date and time) of every exported row, by record id."""
    source_id = SPEC[fact][1][0]
    columns = [record_id, source_id, "last_updated_date", "last_updated_time"]
    by_date = ds.partitioning(pa.schema([("last_updated_date", pa.date32())]), flavor="hive")
    data = ds.dataset(Path(settings.processed_url) / fact, partitioning=by_date).to_table(columns)
    return sorted(zip(*(data.column(c).to_pylist() for c in columns), strict=True))


def test_the_purchase_fact_table_name_is_set_in_one_place(
    warehouse: tuple[Settings, Changes], tmp_path: Path
) -> None:
    settings, _ = warehouse
    result = run_dbt(
        settings.warehouse_url,
        "run",
        "--select",
        "fact_purchase_orders",
        "--vars",
        "{purchase_order_fact_table: fact_purchase_order}",
    )
    assert result.success
    count = "select count(*) from {}"
    assert query(settings.warehouse_url, count.format("fact_purchase_order")) == query(
        settings.warehouse_url, count.format("fact_purchase_orders")
    )
