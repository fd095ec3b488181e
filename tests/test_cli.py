"""The `totes` command as a user meets it: a real child process, its exit code and its output."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import socket
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg2
import pytest
from fastapi.testclient import TestClient
from psycopg2 import sql

from ingestion.apps.api_auth import token_source
from ingestion.apps.payments_api import create_app
from ingestion.common.database import RUN_LOCK_KEY
from ingestion.config import Settings
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.generate import init_source
from tests.conftest import REPO, execute, free_port, query, settings_environment, totes

# every character a URL must %-escape, and a space; the URLs carry it escaped (server.url)
SECRET = "s3cret @:/%#?& Pa55"
SECRET_FORMS = (SECRET, quote(SECRET, safe=""), quote(SECRET, safe=" +"))


def shows_secret(text: str) -> bool:
    return any(form in text for form in SECRET_FORMS)


@pytest.fixture(scope="module")
def password_postgres(tmp_path_factory: pytest.TempPathFactory) -> LocalPostgres:
    """A second Postgres, on its own port, that insists on a password (scram-sha-256)."""
    server = LocalPostgres(
        tmp_path_factory.mktemp("pw") / "data", free_port(), password=SECRET, durable=False
    )
    server.start(databases=("totesys", "warehouse"))
    yield server
    server.stop()


def alive(pid: int) -> bool:
    """A live process; a zombie (exited, not yet reaped by its parent) does not count."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def local_env(home: Path, port: int) -> dict[str, str]:
    """No URLs set: totes must use (and start) the embedded Postgres under `home`."""
    return {"TOTES_HOME": str(home), "TOTES_LOCAL_PORT": str(port)}


def remote_env(server: LocalPostgres, home: Path) -> dict[str, str]:
    """Both databases on `server` (with its password), the zones under `home`."""
    return {
        **local_env(home, free_port()),
        "TOTES_SOURCE_URL": server.url("totesys"),
        "TOTES_WAREHOUSE_URL": server.url("warehouse"),
        "TOTES_LAKE_URL": str(home / "lake"),
        "TOTES_PROCESSED_URL": str(home / "processed"),
    }


def assert_one_line_error(result, *must_contain: str) -> None:  # type: ignore[no-untyped-def]
    """Exactly one error line (after any retry notices), no traceback, no password."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("totes: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert all(line.startswith("totes: ") for line in lines), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not shows_secret(result.stderr + result.stdout)
    for text in must_contain:
        assert text in errors[0], errors[0]


def test_local_up_is_idempotent_keeps_data_across_restarts_psql_reads_it_and_down_stops_all(
    tmp_path: Path,
) -> None:
    env = local_env(tmp_path, free_port())
    assert totes("local", "up", env=env, cwd=tmp_path).returncode == 0
    assert totes("local", "up", env=env, cwd=tmp_path).returncode == 0  # already running: fine
    status = totes("local", "status", env=env, cwd=tmp_path)
    assert "running" in status.stdout and "(embedded)" in status.stdout
    server = LocalPostgres(tmp_path / "postgres", int(env["TOTES_LOCAL_PORT"]))
    execute(server.url("warehouse"), "create table kept (x int); insert into kept values (42)")
    psql = totes("local", "psql", "-At", "-c", "select x from kept", env=env, cwd=tmp_path)
    assert (psql.returncode, psql.stdout) == (0, "42\n"), psql.stderr
    on_source = ("local", "psql", "--database", "totesys", "-Atc", "select current_database()")
    assert totes(*on_source, env=env, cwd=tmp_path).stdout == "totesys\n"
    failed = totes("local", "psql", "-c", "select nope", env=env, cwd=tmp_path)
    assert failed.returncode != 0 and 'column "nope" does not exist' in failed.stderr
    pid = server.status().pid
    assert totes("local", "down", env=env, cwd=tmp_path).returncode == 0
    assert pid is not None and not alive(pid)
    assert not [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or []) and alive(p.pid)
    ]
    assert "stopped" in totes("local", "status", env=env, cwd=tmp_path).stdout
    assert totes("local", "up", env=env, cwd=tmp_path).returncode == 0
    assert query(server.url("warehouse"), "select x from kept") == [(42,)]
    totes("local", "down", env=env, cwd=tmp_path)


def test_commands_start_the_embedded_postgres_when_no_url_is_set(tmp_path: Path) -> None:
    env = local_env(tmp_path, free_port())
    result = totes("source", "init", "--scale", "0.01", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "created totesys" in result.stdout
    server = LocalPostgres(tmp_path / "postgres", int(env["TOTES_LOCAL_PORT"]))
    assert server.status().running
    assert query(server.url("totesys"), "select count(*) from currency") == [(3,)]
    totes("local", "down", env=env, cwd=tmp_path)


def test_totes_dbt_and_the_api_work_with_a_password_of_url_characters_and_never_keep_it(
    password_postgres: LocalPostgres, tmp_path: Path
) -> None:
    env = remote_env(password_postgres, tmp_path)
    assert totes("source", "init", "--scale", "0.01", env=env, cwd=tmp_path).returncode == 0
    result = totes("run", env={**env, "TOTES_LOG_FORMAT": "json"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not shows_secret(result.stdout + result.stderr)
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # every line is JSON
    assert lines[-1]["message"].startswith("done in")
    sales = query(password_postgres.url("totesys"), "select count(*) from sales_order")
    assert (
        query(password_postgres.url("warehouse"), "select count(*) from fact_sales_order") == sales
    )
    # the embedded server was never created, let alone started
    assert not (tmp_path / "postgres").exists()

    # dbt from the command line: profiles.yml decodes the same URL, and logs at debug level
    dbt = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--project-dir", str(REPO),
         "--profiles-dir", str(REPO), "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs"), "--log-level-file", "debug"],
        env={**os.environ, **env}, cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert dbt.returncode == 0, dbt.stdout[-3000:]
    assert "Completed successfully" in dbt.stdout
    assert not shows_secret(dbt.stdout + dbt.stderr)

    # the API on the same warehouse
    tokens = token_source(None, tmp_path)
    (token,) = tokens.current()
    with TestClient(create_app(env["TOTES_WAREHOUSE_URL"], tokens)) as api:
        paid = api.get("/payments/last5", headers={"Authorization": f"Bearer {token}"})
        assert paid.status_code == 200 and len(paid.json()["payments"]) == 5

    # no file the run and dbt wrote (lake, processed zone, dbt's logs and target) holds it,
    # and no row of the run ledger or of dlt's tables in the warehouse
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(written) > 100
    for path in written:
        assert not shows_secret(path.read_bytes().decode("latin-1")), path
    tables = query(
        password_postgres.url("warehouse"),
        "select table_schema, table_name from information_schema.tables "
        "where table_schema = 'ops' or table_name like '\\_dlt%'",
    )
    assert len(tables) > 5
    with psycopg2.connect(password_postgres.url("warehouse")) as conn, conn.cursor() as cur:
        for schema, table in tables:
            cur.execute(
                sql.SQL("select string_agg(row_to_json(t)::text, '') from {} t").format(
                    sql.Identifier(str(schema), str(table))
                )
            )
            assert not shows_secret(str(cur.fetchone())), (schema, table)


def test_an_unreachable_source_is_retried_then_one_line_and_exit_75(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **local_env(tmp_path, free_port()),
        # escaped but its '/', which SQLAlchemy's grammar allows in a password
        "TOTES_SOURCE_URL": f"postgresql://reader:{quote(SECRET)}@127.0.0.1:{port}/totesys",
        "TOTES_WAREHOUSE_URL": f"postgresql://u:{quote(SECRET)}@127.0.0.1:{port}/warehouse",
        "TOTES_RETRY_SECONDS": "3",
    }
    result = totes("run", env=env, cwd=tmp_path)
    assert_one_line_error(
        result, f"connecting to the source database at 127.0.0.1:{port}/totesys", "refused"
    )
    assert result.returncode == 75  # transient: the scheduler's next run may succeed
    assert "totes: retrying: connecting to the source database" in result.stderr
    assert not (tmp_path / "lake").exists()  # nothing was written anywhere


def test_a_source_that_comes_back_within_the_retry_budget_just_works(
    password_postgres: LocalPostgres, tmp_path: Path
) -> None:
    source = LocalPostgres(tmp_path / "flaky", free_port())
    source.start(databases=("totesys",))
    init_source(source.url("totesys"), scale=0.01, seed=2)
    source.stop()
    restart = threading.Timer(3.0, source.start)  # a Postgres restart, seen from outside
    env = {
        **local_env(tmp_path, free_port()),
        "TOTES_SOURCE_URL": source.url("totesys"),
        "TOTES_WAREHOUSE_URL": password_postgres.url("warehouse"),
        "TOTES_LAKE_URL": str(tmp_path / "lake"),
        "TOTES_PROCESSED_URL": str(tmp_path / "processed"),
        "TOTES_RETRY_SECONDS": "120",
    }
    restart.start()
    try:
        result = totes("run", env=env, cwd=tmp_path)
    finally:
        restart.join()
        source.stop()
    assert result.returncode == 0, result.stderr
    assert "totes: retrying: connecting to the source database" in result.stderr
    assert "done in" in result.stdout


def test_wrong_password_is_one_line_and_never_shows_the_password(
    password_postgres: LocalPostgres, tmp_path: Path
) -> None:
    env = {
        **local_env(tmp_path, free_port()),
        "TOTES_SOURCE_URL": password_postgres.url("totesys").replace(
            quote(SECRET, safe=""), quote("wrong-" + SECRET, safe="")
        ),
        "TOTES_WAREHOUSE_URL": password_postgres.url("warehouse"),
    }
    result = totes("run", env=env, cwd=tmp_path)
    assert_one_line_error(result, "source database", "password authentication failed")
    assert "wrong-" not in result.stderr
    assert result.returncode == 3 and "retrying" not in result.stderr  # permanent: no retries
    logged = totes("run", env={**env, "TOTES_LOG_FORMAT": "json"}, cwd=tmp_path)
    error = json.loads(logged.stdout.splitlines()[-1])
    assert error["level"] == "error" and "password authentication failed" in error["message"]
    assert not shows_secret(logged.stdout + logged.stderr)
    # the run ledger keeps the failure, without the password either
    errors = query(password_postgres.url("warehouse"), "select error from ops.pipeline_runs")
    assert errors and not any(shows_secret(e or "") for (e,) in errors)


def test_a_malformed_url_names_the_variable(tmp_path: Path) -> None:
    env = {**local_env(tmp_path, free_port()), "TOTES_SOURCE_URL": "mysql://x@h/db"}
    result = totes("run", env=env, cwd=tmp_path)
    assert_one_line_error(result, "TOTES_SOURCE_URL must look like postgresql://")
    assert result.returncode == 2


def test_a_port_taken_by_something_else_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        env = local_env(tmp_path, squatter.getsockname()[1])
        result = totes("local", "up", env=env, cwd=tmp_path)
    assert_one_line_error(result, "is in use", "TOTES_LOCAL_PORT")


def test_a_second_run_while_one_holds_the_warehouse_skips_cleanly(
    password_postgres: LocalPostgres, tmp_path: Path
) -> None:
    env = remote_env(password_postgres, tmp_path)
    holder = psycopg2.connect(password_postgres.url("warehouse"))
    try:
        with holder.cursor() as cur:  # what a running `totes run` holds
            cur.execute("select pg_advisory_lock(%s)", (RUN_LOCK_KEY,))
        result = totes("run", env=env, cwd=tmp_path)
    finally:
        holder.close()
    assert result.returncode == 0, result.stderr
    assert "skipped: another totes run holds this warehouse's run lock" in result.stdout
    assert not (tmp_path / "lake").exists()


def terminal_output(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """What `totes` writes to stderr when stderr is a terminal (a pseudo-terminal, 120 wide)."""
    screen, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    environ = {**os.environ, "TOTES_LOG_FORMAT": "text", **env}
    command = [str(Path(sys.executable).parent / "totes"), *args]
    result = subprocess.run(command, env=environ, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=terminal, timeout=300, check=False)  # fmt: skip
    os.close(terminal)
    written = b""
    with contextlib.suppress(OSError):  # the terminal reports its end as an error
        while chunk := os.read(screen, 65536):
            written += chunk
    os.close(screen)
    assert result.returncode == 0, written
    return written.decode()


def test_long_work_shows_progress_on_a_terminal_and_nothing_otherwise(
    stack: Settings, tmp_path: Path
) -> None:
    env = settings_environment(stack)
    shown = terminal_output(["source", "init", "--scale", "0.01"], env, tmp_path)
    assert "writing totesys: 100%" in shown and "rows/s" in shown
    quiet = totes("source", "init", "--scale", "0.01", "--reset", env=env, cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_source_init_if_empty_leaves_an_existing_source_alone(
    stack: Settings, tmp_path: Path
) -> None:
    env = settings_environment(stack)
    assert totes("source", "init", "--scale", "0.01", env=env, cwd=tmp_path).returncode == 0
    counts = query(stack.source_url, "select count(*) from sales_order")
    again = totes("source", "init", "--if-empty", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "already has tables: left as is" in again.stdout
    refused = totes("source", "init", env=env, cwd=tmp_path)
    assert refused.returncode == 1 and "pass --reset" in refused.stderr
    assert query(stack.source_url, "select count(*) from sales_order") == counts
