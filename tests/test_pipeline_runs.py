"""Scenario: a first run from empty, a churn, a run after it, and a run with no changes.

The runs happen once per zone kind (they are the expensive part); each test checks one promise,
once with the lake and processed zone in local folders, once in S3 buckets (moto's server).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from ingestion.common import copy_out
from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.export import processed as export_module
from ingestion.export.processed import export
from ingestion.extract import TABLES
from ingestion.lake.layout import Lake, load_date
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.churn import ChurnResult, churn
from ingestion.local.source.generate import init_source
from ingestion.pipeline import RunReport, rebuild, run
from tests.conftest import (
    create_database,
    execute,
    new_stack,
    query,
    settings_environment,
    totes,
    zone_dataset,
)
from tests.test_star_schema import mart_fingerprints


@dataclass
class History:
    settings: Settings
    first: RunReport
    after_churn: RunReport
    no_change: RunReport
    churned: ChurnResult
    changed_rows: dict[str, int]  # source rows with a new last_updated from the churn
    raw_after_first: dict[str, int]
    facts_after_first: list[tuple[object, ...]]


def source_counts(settings: Settings) -> dict[str, int]:
    return {t: query(settings.source_url, f"select count(*) from {t}")[0][0] for t in TABLES}


def raw_counts(settings: Settings) -> dict[str, int]:
    return {
        t: query(settings.warehouse_url, f"select count(*) from totesys_raw.{t}")[0][0]
        for t in TABLES
    }


def lake_rows(settings: Settings, table: str) -> int:
    return zone_dataset(settings.lake_url, "totesys", table, format="parquet").count_rows()


def all_facts(settings: Settings) -> list[tuple[object, ...]]:
    return query(settings.warehouse_url, "select * from fact_sales_order order by sales_record_id")


@pytest.fixture(scope="module", params=["local", "s3"])
def history(
    postgres: LocalPostgres,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> History:
    s3 = request.getfixturevalue("s3") if request.param == "s3" else None
    settings = new_stack(postgres, tmp_path_factory.mktemp("scenario"), s3)
    preflight(settings)
    init_source(settings.source_url, scale=0.05, seed=7)
    first = run(settings)
    raw_after_first, facts_after_first = raw_counts(settings), all_facts(settings)
    newest = {
        t: query(settings.source_url, f"select max(last_updated) from {t}")[0][0] for t in TABLES
    }
    churned = churn(settings.source_url, orders=30, payments_paid=20, updates=8, seed=11)
    changed = {
        t: query(
            settings.source_url, f"select count(*) from {t} where last_updated > %s", (newest[t],)
        )[0][0]
        for t in TABLES
    }
    after_churn = run(settings)
    no_change = run(settings)
    return History(
        settings,
        first,
        after_churn,
        no_change,
        churned,
        changed,
        raw_after_first,
        facts_after_first,
    )


def test_first_run_lands_every_source_row_in_the_lake_and_raw_schema(history: History) -> None:
    source = source_counts(history.settings)
    # counts now include the churn; the first run saw source minus the churned rows' new versions
    expected_first = {t: history.first.stage("extract").rows.get(t, 0) for t in TABLES}
    assert expected_first == history.raw_after_first
    assert all(expected_first[t] > 0 for t in TABLES)
    new_rows = {
        t: history.after_churn.stage("extract").rows.get(t, 0)
        for t in ("sales_order", "purchase_order", "transaction")
    }
    for table, rows in new_rows.items():  # orders are only inserted: first + new = all of them
        assert expected_first[table] + rows == source[table]
    for table in TABLES:
        assert lake_rows(history.settings, table) == raw_counts(history.settings)[table]


def test_first_run_builds_one_fact_row_per_sales_order(history: History) -> None:
    facts = history.facts_after_first
    assert len(facts) == history.raw_after_first["sales_order"]
    assert [f[0] for f in facts] == list(range(1, len(facts) + 1))


def test_fact_rows_equal_their_source_rows(history: History) -> None:
    mismatches = query(
        history.settings.warehouse_url,
        "select count(*) from fact_sales_order f join totesys_raw.sales_order s "
        "on s.sales_order_id = f.sales_order_id "
        "and (s.last_updated at time zone 'UTC')::date = f.last_updated_date "
        "and (s.last_updated at time zone 'UTC')::time = f.last_updated_time "
        "where (s.units_sold, s.unit_price, s.currency_id, s.design_id, s.staff_id, "
        "s.counterparty_id, s.agreed_delivery_location_id, s.agreed_payment_date::date, "
        "s.agreed_delivery_date::date, (s.created_at at time zone 'UTC')::date, "
        "(s.created_at at time zone 'UTC')::time) "
        "is distinct from (f.units_sold, f.unit_price, f.currency_id, f.design_id, "
        "f.sales_staff_id, f.counterparty_id, f.agreed_delivery_location_id, "
        "f.agreed_payment_date, f.agreed_delivery_date, f.created_date, f.created_time)",
    )
    assert mismatches == [(0,)]
    source_total = query(
        history.settings.source_url, "select sum(units_sold * unit_price) from sales_order"
    )
    fact_total = query(
        history.settings.warehouse_url, "select sum(units_sold * unit_price) from fact_sales_order"
    )
    assert source_total == fact_total


def test_dim_currency_names_every_currency_from_the_iso_seed(history: History) -> None:
    assert query(history.settings.warehouse_url, "select * from dim_currency order by 1") == [
        (1, "GBP", "Pound Sterling"),
        (2, "USD", "US Dollar"),
        (3, "EUR", "Euro"),
    ]


def test_churn_makes_exactly_the_versions_it_reports(history: History) -> None:
    assert history.churned.changed_rows == sum(history.changed_rows.values())
    assert history.churned.payments_paid == 20 and history.churned.updates == 8


def test_run_after_churn_extracts_and_loads_only_the_changed_rows(history: History) -> None:
    expected = {t: n for t, n in history.changed_rows.items() if n}
    assert history.after_churn.stage("extract").rows == expected
    assert history.after_churn.stage("load").rows == expected
    raw_after = raw_counts(history.settings)
    assert raw_after == {t: history.raw_after_first[t] + expected.get(t, 0) for t in TABLES}


def test_run_after_churn_appends_only_new_fact_versions(history: History) -> None:
    facts = all_facts(history.settings)
    before = history.facts_after_first
    assert facts[: len(before)] == before  # history is never rewritten
    appended = facts[len(before) :]
    assert len(appended) == history.changed_rows["sales_order"] > 0
    assert [f[0] for f in appended] == list(range(len(before) + 1, len(facts) + 1))


def test_run_without_changes_adds_nothing(history: History) -> None:
    assert history.no_change.stage("extract").rows == {}
    assert history.no_change.stage("load").rows == {}
    assert history.no_change.stage("export").rows["fact_sales_order"] == 0
    expected = len(history.facts_after_first) + history.changed_rows["sales_order"]
    assert len(all_facts(history.settings)) == expected


@pytest.mark.parametrize("history", ["local"], indirect=True)
def test_a_rows_newer_versions_are_found_through_a_raw_index(history: History) -> None:
    # Incremental models look up each changed row's newer versions in staging by (id,
    # last_updated). If no raw index serves staging's cast id, each lookup scans every newer row:
    # a build with a wide window (days of changes) then takes minutes instead of seconds.
    for table in TABLES:
        plan = query(
            history.settings.warehouse_url,
            "set enable_seqscan = off; explain select 1 "
            f"from totesys_staging.stg_totesys__{table} "
            f"where {table}_id = 1 and last_updated > '2000-01-01'",
        )
        conditions = [line for (line,) in plan if "Index Cond" in str(line)]
        assert any(f"({table}_id)::integer = 1" in str(c) for c in conditions), (table, plan)


def test_processed_zone_holds_every_fact_row_once_and_current_dims(history: History) -> None:
    processed = history.settings.processed_url
    facts = zone_dataset(processed, "fact_sales_order", format="parquet", partitioning="hive")
    record_ids = facts.to_table(columns=["sales_record_id"]).column(0).to_pylist()
    assert sorted(record_ids) == [f[0] for f in all_facts(history.settings)]
    dim = zone_dataset(processed, "dim_currency").to_table()
    assert dim.num_rows == 3


@pytest.mark.parametrize("history", ["local"], indirect=True)
def test_a_first_export_in_chunks_after_one_cut_short_writes_each_record_once(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first export reads a fact in day order, in chunks, so a day can span two chunks: the
    # second merges into the file the first wrote. Before it here, a first export was cut
    # short: half the days written, no export state. Chunks of one row split every busy day.
    wh = history.settings.warehouse_url
    busy = "select last_updated_date from fact_sales_order group by 1 having count(*) > 1"
    assert query(wh, busy)
    processed = tmp_path / "processed"
    written = sorted((Path(history.settings.processed_url) / "fact_sales_order").glob("*=*"))
    for day in written[::2]:
        shutil.copytree(day, processed / "fact_sales_order" / day.name)
    monkeypatch.setattr(copy_out, "BATCH_ROWS", 1)
    export(wh, str(processed))
    facts = zone_dataset(str(processed), "fact_sales_order", partitioning="hive")
    record_ids = facts.to_table(columns=["sales_record_id"]).column(0).to_pylist()
    assert sorted(record_ids) == [f[0] for f in all_facts(history.settings)]


@pytest.mark.parametrize("history", ["local"], indirect=True)
def test_a_dim_merge_rewrites_only_the_part_files_of_the_changed_keys(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dim_transaction is updated in place, so an export merges the rows written since the last
    # one into the part files of their keys. Parts of 200 keys: here the dim is several files.
    monkeypatch.setattr(export_module, "PART_KEYS", 200)
    wh, processed = history.settings.warehouse_url, tmp_path / "processed"
    folder = processed / "dim_transaction"
    columns = ["transaction_id", "transaction_type", "sales_order_id", "purchase_order_id"]

    def files() -> dict[str, tuple[int, int]]:  # a rewritten file is a new inode (a rename)
        return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.parquet")}

    def exported_equals_warehouse() -> bool:
        exported = zone_dataset(str(processed), "dim_transaction").to_table(columns)
        rows = sorted(zip(*(exported.column(c).to_pylist() for c in columns), strict=True))
        return rows == query(wh, f"select {', '.join(columns)} from dim_transaction order by 1")

    export(wh, str(processed))
    whole = files()
    ((newest,),) = query(wh, "select max(transaction_id) from dim_transaction")
    assert sorted(whole) == [f"part-{n:05d}.parquet" for n in range(newest // 200 + 1)]
    assert exported_equals_warehouse()

    # a new version of row 1 that changes nothing: the merge rewrites its part only
    execute(wh, "update dim_transaction set transaction_id = 1 where transaction_id = 1")
    export(wh, str(processed))
    merged = files()
    assert [name for name in merged if merged[name] != whole[name]] == ["part-00000.parquet"]
    assert exported_equals_warehouse()

    # a file the export state does not name (the one-file layout of earlier versions): the dim
    # is exported whole, and that file removed, so no reader counts its rows twice
    shutil.copy(folder / "part-00001.parquet", folder / "dim_transaction.parquet")
    export(wh, str(processed))
    assert sorted(files()) == sorted(whole)
    assert exported_equals_warehouse()


# local zones only: the S3 scenario's rebuild already reads every load back from S3
@pytest.mark.parametrize("history", ["local"], indirect=True)
def test_a_new_empty_warehouse_is_filled_from_the_lake_alone(
    history: History, postgres: LocalPostgres
) -> None:
    # dlt keeps no local state between runs: the load watermark lives in the warehouse, so a
    # new warehouse loads every lake load, and the lake's cursors mean no source row is re-read.
    settings = replace(history.settings, warehouse_url=create_database(postgres, "rebuilt"))
    report = run(settings)
    assert report.stage("extract").rows == {}
    assert raw_counts(settings) == raw_counts(history.settings)
    original, rebuilt = all_facts(history.settings), all_facts(settings)
    assert sorted(f[1:] for f in rebuilt) == sorted(f[1:] for f in original)  # ids renumbered


def test_the_processed_zone_answers_like_the_warehouse_reading_one_day_only(
    history: History,
) -> None:
    wh = history.settings.warehouse_url
    ((day,),) = query(wh, "select max(last_updated_date) from fact_sales_order")
    by_day = ds.partitioning(pa.schema([("last_updated_date", pa.date32())]), flavor="hive")
    facts = zone_dataset(
        history.settings.processed_url, "fact_sales_order", format="parquet", partitioning=by_day
    )
    that_day = ds.field("last_updated_date") == day
    assert len(list(facts.get_fragments(filter=that_day))) == 1  # pruned to one file
    sales = facts.to_table(filter=that_day, columns=["units_sold", "unit_price"]).to_pylist()
    revenue = sum(row["units_sold"] * row["unit_price"] for row in sales)
    expected = query(
        wh,
        "select count(*), sum(units_sold * unit_price) from fact_sales_order "
        "where last_updated_date = %s",
        (day,),
    )
    assert [(len(sales), revenue)] == expected


def test_lake_files_have_the_sources_types_and_a_manifest_per_load(history: History) -> None:
    lake = Lake(history.settings.lake_url)
    loads = lake.completed_loads()
    manifests = lake.fs.ls(f"{lake.root}/_manifests", detail=False)
    assert sorted(Path(m).stem for m in manifests) == sorted(loads)
    first = json.loads(lake.fs.cat_file(f"{lake.root}/_manifests/{loads[0]}.json"))
    orders = first["tables"]["sales_order"]
    assert orders["rows"] == history.raw_after_first["sales_order"]
    assert orders["folder"] == f"sales_order/load_date={load_date(loads[0])}"
    assert first["contract_version"] == 1
    newest = json.loads(lake.fs.cat_file(f"{lake.root}/_manifests/{loads[-1]}.json"))
    assert newest["tables"] == {}  # a run without changes leaves no (empty) data file
    schema = zone_dataset(history.settings.lake_url, "totesys", "sales_order").schema
    assert schema.field("last_updated").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("unit_price").type == pa.decimal128(10, 2)


def test_a_lake_day_folder_is_compacted_into_one_file(history: History) -> None:
    # the tests compact a folder once it has two files: the churn's load made the second
    assert "compacted" in history.after_churn.stage("extract").detail
    lake = Lake(history.settings.lake_url)
    folder = lake.day_folder("sales_order", load_date(lake.completed_loads()[0]))
    assert folder.compacted and folder.load_files == {}
    assert len(folder.compacted_loads) == 2  # the first run's load and the churn's
    # a reader of the lake finds every version there, reading only that day's file
    lake_table = zone_dataset(
        history.settings.lake_url, "totesys", "sales_order", partitioning="hive"
    )
    that_day = ds.field("load_date") == load_date(lake.completed_loads()[0])
    assert len(list(lake_table.get_fragments(filter=that_day))) == 1
    rows = lake_table.count_rows(filter=that_day)
    assert rows == raw_counts(history.settings)["sales_order"]


def test_rebuild_from_the_lake_alone_gives_the_same_warehouse_and_processed_zone(
    history: History,
) -> None:
    # last in this module: it rebuilds the scenario's warehouse in place
    settings = history.settings
    marts, raw = mart_fingerprints(settings.warehouse_url), raw_counts(settings)
    # a source nobody can reach: the rebuild must not need it
    report = rebuild(replace(settings, source_url="postgresql://nobody@127.0.0.1:9/gone"))
    assert [stage.name for stage in report.stages] == [
        "reset", "load", "dbt", "quarantine", "export",
    ]  # fmt: skip
    assert raw_counts(settings) == raw
    assert mart_fingerprints(settings.warehouse_url) == marts  # facts with ids, and dims
    facts = zone_dataset(settings.processed_url, "fact_sales_order", partitioning="hive")
    exported = sorted(facts.to_table(columns=["sales_record_id"]).column(0).to_pylist())
    assert exported == [f[0] for f in all_facts(settings)]


def test_totes_rebuild_asks_first_and_a_no_changes_nothing(
    history: History, tmp_path: Path
) -> None:
    raw = raw_counts(history.settings)
    refused = totes(
        "rebuild", env=settings_environment(history.settings), cwd=tmp_path, answer="n\n"
    )
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    assert raw_counts(history.settings) == raw
