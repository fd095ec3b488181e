"""Bad input: the data contract on the source's schema, and quarantine for bad values.

One scenario per module: a clean run; then the source drifts (a new column, a renamed column,
a changed type) and sends bad values (a text date that is no date, a negative quantity, a NULL
where totesys says NOT NULL, a reference to a design that does not exist), next to good
changes; `totes run` runs on that; then the source is fixed and a last run picks the fixes up.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dlt.common.versioned_state import decompress_state

from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.extract import TABLES
from ingestion.extract.contract import Contract, compare
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.churn import churn
from ingestion.local.source.generate import init_source
from ingestion.pipeline import run
from tests.conftest import execute, new_stack, query, settings_environment, totes

MISSING_DESIGN = 990_001


@dataclass
class Scenario:
    settings: Settings
    broken_run: subprocess.CompletedProcess[str]
    fixed_run: subprocess.CompletedProcess[str]
    listed_while_broken: subprocess.CompletedProcess[str]
    listed_after_fix: subprocess.CompletedProcess[str]
    bad_orders: dict[str, int]  # what was wrong -> sales_order_id
    null_payment: int
    churned_order_ids: list[int]
    design_cursor: list[str]  # the design table's cursor: before the break, after it, after fix
    quarantine_files_while_broken: dict[str, list[dict[str, object]]]
    new_column_in_raw: list[tuple[object, ...]]


def design_cursor(settings: Settings) -> str:
    """The design table's extract cursor, from the newest dlt state in the lake."""
    states = (Path(settings.lake_url) / "totesys" / "_dlt_pipeline_state").glob("*.jsonl")
    newest = max(states, key=lambda path: float(path.name.split("__")[1]))
    state = decompress_state(json.loads(newest.read_text())["state"])
    design = state["sources"]["sql_database"]["resources"]["design"]
    return str(design["incremental"]["last_updated"]["last_value"])


def quarantine_files(settings: Settings) -> dict[str, list[dict[str, object]]]:
    area = Path(settings.lake_url) / "quarantine"
    return {path.parent.name: pq.read_table(path).to_pylist() for path in area.glob("*/*.parquet")}


def break_the_source(url: str) -> tuple[dict[str, int], int]:
    # schema drift
    execute(url, "alter table address add column note text")
    execute(
        url, "update address set note = 'new column', last_updated = now() where address_id = 1"
    )
    execute(url, "alter table design rename column file_name to file_title")
    execute(url, "update design set design_name = 'while held', last_updated = now()")
    execute(url, "alter table currency alter column currency_code type text")
    # bad values: the source lost two constraints
    execute(url, "alter table sales_order drop constraint sales_order_design_id_fkey")
    execute(url, "alter table payment alter column payment_amount drop not null")
    ids = [row[0] for row in query(url, "select sales_order_id from sales_order order by 1")]
    bad = {"date": ids[0], "negative": ids[1], "orphan": ids[2]}
    execute(
        url,
        f"update sales_order set agreed_delivery_date = '2024-02-30', last_updated = now() "
        f"where sales_order_id = {bad['date']};"
        f"update sales_order set units_sold = -3, last_updated = now() "
        f"where sales_order_id = {bad['negative']};"
        f"update sales_order set design_id = {MISSING_DESIGN}, last_updated = now() "
        f"where sales_order_id = {bad['orphan']};",
    )
    ((payment_id,),) = query(url, "select min(payment_id) from payment")
    execute(
        url,
        "update payment set payment_amount = null, last_updated = now() "
        f"where payment_id = {payment_id}",
    )
    return bad, payment_id


def fix_the_source(url: str, bad: dict[str, int], payment_id: int) -> None:
    execute(url, "alter table design rename column file_title to file_name")
    execute(url, "alter table currency alter column currency_code type varchar(3)")
    execute(
        url,
        "insert into design (design_id, design_name, file_location, file_name, last_updated) "
        f"values ({MISSING_DESIGN}, 'arrived late', '/designs', 'late.json', now())",
    )
    execute(
        url,
        f"update sales_order set units_sold = 3, last_updated = now() "
        f"where sales_order_id = {bad['negative']};"
        f"update payment set payment_amount = 12.50, last_updated = now() "
        f"where payment_id = {payment_id};",
    )  # the bad date stays: it stays held


@pytest.fixture(scope="module")
def scenario(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    home = tmp_path_factory.mktemp("bad_input")
    settings = new_stack(postgres, home)
    preflight(settings)
    init_source(settings.source_url, scale=0.02, seed=11)
    run(settings)
    cursors = [design_cursor(settings)]
    env = settings_environment(settings)

    bad, payment_id = break_the_source(settings.source_url)
    before = {r[0] for r in query(settings.source_url, "select sales_order_id from sales_order")}
    churn(settings.source_url, orders=4, payments_paid=0, updates=0, seed=3)
    after = {r[0] for r in query(settings.source_url, "select sales_order_id from sales_order")}
    broken_run = totes("run", env=env, cwd=home)
    cursors.append(design_cursor(settings))
    listed_while_broken = totes("quarantine", "list", env=env, cwd=home)
    files = quarantine_files(settings)
    new_column = query(
        settings.warehouse_url, "select address_id, note from totesys_raw.address where note <> ''"
    )

    fix_the_source(settings.source_url, bad, payment_id)
    fixed_run = totes("run", env=env, cwd=home)
    cursors.append(design_cursor(settings))
    listed_after_fix = totes("quarantine", "list", "--all", env=env, cwd=home)
    return Scenario(
        settings, broken_run, fixed_run, listed_while_broken, listed_after_fix, bad, payment_id,
        sorted(after - before), cursors, files, new_column,
    )  # fmt: skip


def fact_versions(settings: Settings, fact: str, id_column: str, source_id: int) -> int:
    ((count,),) = query(
        settings.warehouse_url, f"select count(*) from {fact} where {id_column} = %s", (source_id,)
    )
    return int(count)


def test_a_new_source_column_is_kept_in_the_lake_and_warned_about(scenario: Scenario) -> None:
    assert "totes: warning: data contract: column address.note (text) is new" in (
        scenario.broken_run.stderr
    )
    assert scenario.new_column_in_raw == [(1, "new column")]  # lake -> raw, kept as sent
    # and the address itself goes on: the warehouse shows its change
    rows = query(scenario.settings.warehouse_url, "select count(*) from dim_location")
    assert rows[0][0] > 0


def test_a_renamed_column_or_a_changed_type_stops_only_that_table(scenario: Scenario) -> None:
    assert scenario.broken_run.returncode == 65, scenario.broken_run.stderr
    error = scenario.broken_run.stderr.strip().splitlines()[-1]
    assert error.startswith("totes: error: the source breaks the data contract (v1)")
    assert "column design.file_name is missing (dropped or renamed)" in error
    assert "column currency.currency_code is text, the contract says character varying(3)" in (
        error
    )
    assert "Traceback" not in scenario.broken_run.stderr
    assert "held back: currency, design" in scenario.broken_run.stdout
    # every other stage ran to the end
    for stage in ("load", "dbt", "quarantine", "export"):
        assert f"  {stage} " in scenario.broken_run.stdout


def test_the_run_ledger_names_the_held_back_tables_as_not_caught_up(scenario: Scenario) -> None:
    url = scenario.settings.warehouse_url
    runs = query(url, "select status, exit_code, failed_stage from ops.pipeline_runs order by 1")
    assert sorted(runs) == [("failed", 65, "extract"), ("succeeded", 0, None)]
    behind = query(
        url,
        "select t.table_name from ops.pipeline_run_tables t join ops.pipeline_runs r "
        "using (run_id) where r.exit_code = 65 and t.caught_up = false order by 1",
    )
    assert behind == [("currency",), ("design",)]


def test_nothing_advances_for_a_held_back_table_until_it_is_fixed(scenario: Scenario) -> None:
    before, while_broken, after_fix = scenario.design_cursor
    assert while_broken == before
    assert after_fix > before
    names = query(
        scenario.settings.warehouse_url,
        "select count(*) from dim_design where design_name = 'while held'",
    )
    assert names[0][0] > 0  # the edit made while design was held back arrived after the fix
    assert scenario.fixed_run.returncode == 0, scenario.fixed_run.stderr


def test_good_rows_go_on_while_bad_ones_are_held(scenario: Scenario) -> None:
    for order_id in scenario.churned_order_ids:
        assert fact_versions(scenario.settings, "fact_sales_order", "sales_order_id", order_id) == 1
    assert (
        "totes: warning: 4 source versions are held in quarantine (payment 1, sales_order 3)"
        in (scenario.broken_run.stderr)
    )


def test_the_quarantine_area_of_the_lake_holds_each_bad_row_with_its_reason(
    scenario: Scenario,
) -> None:
    files = scenario.quarantine_files_while_broken
    assert set(files) == {"sales_order", "payment"}
    reasons = {row["source_id"]: row["reason"] for row in files["sales_order"]}
    assert reasons == {
        scenario.bad_orders["date"]: "agreed_delivery_date '2024-02-30' is not a date",
        scenario.bad_orders["negative"]: "units_sold is negative",
        scenario.bad_orders["orphan"]: f"design_id {MISSING_DESIGN} has no valid design row yet",
    }
    (payment,) = files["payment"]
    assert (payment["source_id"], payment["reason"], payment["status"]) == (
        scenario.null_payment,
        "payment_amount is null",
        "held",
    )


def test_totes_quarantine_list_shows_what_is_held_and_why(scenario: Scenario) -> None:
    listed = scenario.listed_while_broken
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["table", "id", "last_updated", "status", "reason"]
    assert len(lines) == 5
    assert any("units_sold is negative" in line and " held " in line for line in lines)


def test_a_held_version_goes_on_once_its_parent_arrives(scenario: Scenario) -> None:
    orphan = scenario.bad_orders["orphan"]
    designs = query(
        scenario.settings.warehouse_url,
        "select design_id from fact_sales_order where sales_order_id = %s order by sales_record_id",
        (orphan,),
    )
    assert designs[-1] == (MISSING_DESIGN,)  # the held version, released on the fixed run
    assert f"{MISSING_DESIGN}" not in scenario.listed_after_fix.stdout


def test_a_fixed_row_supersedes_its_bad_version_and_nothing_is_dropped(
    scenario: Scenario,
) -> None:
    lines = scenario.listed_after_fix.stdout.splitlines()[1:]
    status = {(line.split()[0], int(line.split()[1])): line.split()[4] for line in lines}
    assert status == {
        ("sales_order", scenario.bad_orders["date"]): "held",
        ("sales_order", scenario.bad_orders["negative"]): "superseded",
        ("payment", scenario.null_payment): "superseded",
    }
    # every raw version is in the fact or in quarantine
    url = scenario.settings.warehouse_url
    ((raw,),) = query(
        url, "select count(distinct (sales_order_id, last_updated)) from totesys_raw.sales_order"
    )
    ((fact,),) = query(url, "select count(*) from fact_sales_order")
    ((held,),) = query(
        url,
        "select count(*) from totesys_quarantine.quarantined_rows "
        "where source_table = 'sales_order'",
    )
    assert raw == fact + held


def test_the_contract_matches_the_spec_schema(postgres: LocalPostgres, tmp_path: Path) -> None:
    settings = new_stack(postgres, tmp_path)
    init_source(settings.source_url, scale=0.001, seed=1)
    found: dict[str, dict[str, str]] = {}
    for table, column, type_ in query(
        settings.source_url,
        "select c.relname, a.attname, format_type(a.atttypid, a.atttypmod) "
        "from pg_attribute a join pg_class c on c.oid = a.attrelid "
        "where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' "
        "and c.relname <> '_prisma_migrations' and a.attnum > 0 and not a.attisdropped "
        "order by a.attnum",
    ):
        found.setdefault(str(table), {})[str(column)] = str(type_)
    assert Contract.load().tables == found


def test_a_table_missing_from_the_source_is_held_back_by_name() -> None:
    contract = Contract.load()
    found = {table: dict(columns) for table, columns in contract.tables.items()}
    del found["payment"]
    check = compare(contract, found)
    assert check.broken == {"payment": ["table payment is missing from the source"]}
    assert check.usable(TABLES) == [table for table in TABLES if table != "payment"]
    assert check.warnings == []
