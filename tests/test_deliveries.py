"""The delivery partner's JSON files: the contract of a file, which files a run reads (on a local
folder and on S3), bad files set aside whole, and the events through to the marts."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.extract import DELIVERIES_DATASET, DELIVERY_TABLE, REJECTED_TABLE
from ingestion.extract.deliveries import BrokenFile, events_in, extract_deliveries
from ingestion.lake.layout import Lake
from ingestion.lake.storage import filesystem
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.deliveries import drop_deliveries
from ingestion.local.source.generate import init_source
from ingestion.pipeline import run
from tests.conftest import S3, new_stack, query, settings_environment, totes

EVENT = {
    "event_id": "e-1",
    "sales_order_id": 7,
    "event_type": "delivered",
    "event_at": "2026-12-01T10:00:00+01:00",
    "units": 12,
    "carrier": "DPD",
}


def event(**changes: object) -> dict[str, object]:
    return {**EVENT, **changes}


def lines(*events: dict[str, object]) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


# --- the contract of a file ---------------------------------------------------------------


def test_json_lines_and_json_arrays_hold_events_in_utc() -> None:
    (from_lines,) = events_in("a.jsonl", lines(EVENT) + b"\n")  # blank lines are fine
    (from_array,) = events_in("b.json", json.dumps([EVENT]).encode())
    assert from_lines == from_array
    assert from_lines.event_at.isoformat() == "2026-12-01T10:00:00+01:00"
    assert events_in("empty.jsonl", b"") == []


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("a.jsonl", lines(EVENT)[:-10], "line 1: not JSON"),
        ("a.json", lines(EVENT, EVENT), "not JSON"),  # lines in a .json file
        ("a.json", json.dumps(EVENT).encode(), "a .json file must hold an array of events"),
        ("a.jsonl", b"[1]\n", "line 1: an event must be an object"),
        ("a.jsonl", "é".encode("latin-1"), "not UTF-8"),
        ("a.jsonl", lines(EVENT, {k: v for k, v in EVENT.items() if k != "units"}),
         "line 2: units is missing"),
        ("a.jsonl", lines(event(units="12")), "line 1: units input should be a valid integer"),
        ("a.jsonl", lines(event(units=1.5)), "line 1: units input should be a valid integer"),
        ("a.jsonl", lines(event(units=-1)), "line 1: units input should be greater than"),
        ("a.jsonl", lines(event(event_type="lost")), "line 1: event_type input should be"),
        ("a.jsonl", lines(event(event_at="2026-12-01T10:00:00")), "should have timezone info"),
        ("a.jsonl", lines(event(event_at="yesterday")), "line 1: event_at input should be"),
        ("a.jsonl", lines(event(extra=1)), "line 1: extra is not a field of the contract"),
    ],
)  # fmt: skip
def test_a_file_that_breaks_the_contract_is_rejected_whole_naming_where(
    name: str, content: bytes, reason: str
) -> None:
    with pytest.raises(BrokenFile) as rejected:
        events_in(name, content)
    assert reason in str(rejected.value)


def test_a_reason_stays_short_however_bad_the_file() -> None:
    content = lines(*[event(units="x")] * 1000)
    with pytest.raises(BrokenFile) as rejected:
        events_in("a.jsonl", content)
    assert len(str(rejected.value)) <= 500
    assert str(rejected.value).endswith("; ...")


# --- which files a run reads --------------------------------------------------------------


def lake_rows(lake_url: str, table: str) -> list[dict[str, object]]:
    lake = Lake(lake_url, DELIVERIES_DATASET)
    return [row for batch in lake.read(table, lake.completed_loads()) for row in batch.to_pylist()]


def test_each_file_is_read_once_even_when_it_turns_up_late_and_again_when_rewritten(
    tmp_path: Path,
) -> None:
    drop, lake = tmp_path / "drop", str(tmp_path / "lake")
    (drop / "day").mkdir(parents=True)
    (drop / "a.jsonl").write_bytes(lines(event(event_id="a1"), event(event_id="a2")))
    (drop / "day" / "b.json").write_bytes(json.dumps([event(event_id="b1")]).encode())
    (drop / "notes.txt").write_text("not an events file: not read")
    assert extract_deliveries(str(drop), lake) == {DELIVERY_TABLE: 3}
    assert extract_deliveries(str(drop), lake) == {}

    # files that turn up later with the time of the newest file read, and an hour older
    stamp = max(f.stat().st_mtime_ns for f in (drop / "a.jsonl", drop / "day" / "b.json"))
    for name, at in (("c.jsonl", stamp), ("d.jsonl", stamp - 3600 * 10**9)):
        (drop / name).write_bytes(lines(event(event_id=name[0] + "1")))
        os.utime(drop / name, ns=(at, at))
    assert extract_deliveries(str(drop), lake) == {DELIVERY_TABLE: 2}

    # a file written again (a new modification time) is read again, whole
    os.utime(drop / "a.jsonl", ns=(stamp + 10**9, stamp + 10**9))
    assert extract_deliveries(str(drop), lake) == {DELIVERY_TABLE: 2}
    assert extract_deliveries(str(drop), lake) == {}
    read = sorted((row["source_file"], row["event_id"]) for row in lake_rows(lake, DELIVERY_TABLE))
    assert read == [
        ("a.jsonl", "a1"), ("a.jsonl", "a1"), ("a.jsonl", "a2"), ("a.jsonl", "a2"),
        ("c.jsonl", "c1"), ("d.jsonl", "d1"), ("day/b.json", "b1"),
    ]  # fmt: skip


def test_on_s3_a_bad_file_is_kept_whole_with_its_reason_and_the_good_ones_go_on(
    s3: S3, tmp_path: Path
) -> None:
    drop = f"s3://{s3.new_bucket('drop')}/partner/deliveries"
    lake = f"s3://{s3.new_bucket('lake')}/totes"
    fs, root = filesystem(drop)
    bad = lines(event(event_id="x1"))[:-5]
    fs.pipe_file(f"{root}/2026-12-01.jsonl", lines(event(event_id="g1"), event(event_id="g2")))
    fs.pipe_file(f"{root}/2026-12-02.jsonl", bad)
    assert extract_deliveries(drop, lake) == {DELIVERY_TABLE: 2, REJECTED_TABLE: 1}

    fs.pipe_file(f"{root}/2026-12-03.jsonl", lines(event(event_id="g3")))
    assert extract_deliveries(drop, lake) == {DELIVERY_TABLE: 1}
    assert extract_deliveries(drop, lake) == {}

    assert sorted(row["event_id"] for row in lake_rows(lake, DELIVERY_TABLE)) == ["g1", "g2", "g3"]
    (rejected,) = lake_rows(lake, REJECTED_TABLE)
    assert rejected["source_file"] == "2026-12-02.jsonl"
    assert rejected["content"] == bad  # nothing is lost
    assert rejected["size_bytes"] == len(bad)
    assert str(rejected["reason"]).startswith("line 1: not JSON")


def test_an_unreachable_drop_bucket_raises_and_reads_nothing(s3: S3, tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    with pytest.raises(Exception, match=r"NoSuchBucket|does not exist|not found"):
        extract_deliveries("s3://no-such-bucket-here/deliveries", lake)
    assert lake_rows(lake, DELIVERY_TABLE) == []


# --- through the warehouse ----------------------------------------------------------------


@pytest.fixture(scope="module")
def delivered(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A run over a small source, with the generator's events for 30 orders and 3 bad files."""
    settings = new_stack(postgres, tmp_path_factory.mktemp("deliveries"))
    preflight(settings)
    init_source(settings.source_url, scale=0.05, seed=5)
    dropped = drop_deliveries(settings.source_url, settings.deliveries_url, 30, seed=1, bad=3)
    assert dropped.events > 0 and len(dropped.bad_files) == 3
    run(settings)
    return settings


def test_every_event_reaches_the_fact_once_and_the_other_sources_are_not_held_up(
    delivered: Settings,
) -> None:
    wh = delivered.warehouse_url
    sent = [
        json.loads(line)
        for line in (Path(delivered.deliveries_url) / "deliveries-1.jsonl").read_text().splitlines()
    ]
    fact = query(wh, "select event_id, sales_order_id, event_type, units from fact_delivery_event")
    assert sorted(fact) == sorted(
        (e["event_id"], e["sales_order_id"], e["event_type"], e["units"]) for e in sent
    )
    assert query(wh, "select count(*) > 0 from fact_sales_order") == [(True,)]


def test_sales_order_delivery_joins_each_reported_order_to_the_star_schema(
    delivered: Settings,
) -> None:
    rows = query(
        delivered.warehouse_url,
        "select count(*), count(design_name), count(delivery_city), count(delivered_date), "
        "  bool_and(delivered_on_time = (delivered_date <= agreed_delivery_date)), "
        "  bool_and(latest_event_type = 'delivered') "
        "from sales_order_delivery",
    )
    assert rows == [(30, 30, 30, 30, True, True)]


def test_bad_files_are_listed_with_their_reasons_and_a_resent_file_adds_no_version(
    delivered: Settings, tmp_path: Path
) -> None:
    env = settings_environment(delivered)
    listed = totes("quarantine", "list", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "deliveries-1-bad-1.jsonl" in listed.stdout and "not JSON" in listed.stdout
    assert "deliveries-1-bad-2.jsonl" in listed.stdout and "units is missing" in listed.stdout
    assert "deliveries-1-bad-3.jsonl" in listed.stdout and "valid integer" in listed.stdout
    status = totes("status", env=env, cwd=tmp_path)
    assert "quarantine: delivery files 3" in status.stdout, status.stdout

    # the partner sends the same file again and fixes one bad file
    wh = delivered.warehouse_url
    before = query(wh, "select count(*) from fact_delivery_event")
    drop = Path(delivered.deliveries_url)
    good = drop / "deliveries-1.jsonl"
    good.write_bytes(good.read_bytes())
    fixed = json.loads(good.read_text().splitlines()[0]) | {"event_id": "fixed-1"}
    (drop / "deliveries-1-bad-2.jsonl").write_bytes(lines(fixed))
    run(delivered)
    assert query(wh, "select count(*) from fact_delivery_event") == [(before[0][0] + 1,)]
    listed = totes("quarantine", "list", env=env, cwd=tmp_path)
    assert "deliveries-1-bad-2.jsonl" not in listed.stdout
    everything = totes("quarantine", "list", "--all", env=env, cwd=tmp_path)
    assert "units is missing (since replaced)" in everything.stdout


def test_the_fact_is_exported_to_the_processed_zone(delivered: Settings) -> None:
    exported = ds.dataset(
        Path(delivered.processed_url) / "fact_delivery_event", partitioning="hive"
    ).to_table()
    ((in_fact,),) = query(delivered.warehouse_url, "select count(*) from fact_delivery_event")
    assert exported.num_rows == in_fact


def test_a_broken_drop_bucket_warns_and_the_run_goes_on(
    delivered: Settings, tmp_path: Path
) -> None:
    env = settings_environment(
        replace(delivered, deliveries_url="s3://no-such-bucket-here/deliveries"),
        AWS_ENDPOINT_URL_S3="http://127.0.0.1:9",  # nothing listens there
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_MAX_ATTEMPTS="1",
    )
    result = totes("run", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "delivery files not read from s3://no-such-bucket-here/deliveries" in result.stderr
