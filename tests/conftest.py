"""Shared fixtures: a real embedded Postgres per test session, fresh databases per scenario."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pyarrow.dataset as ds
import pytest

from ingestion.config import Settings, load_settings
from ingestion.lake.layout import Lake
from ingestion.lake.storage import arrow_filesystem, filesystem
from ingestion.local.postgres import LocalPostgres

REPO = Path(__file__).resolve().parent.parent
_names = itertools.count()

# pytest-xdist runs test modules in parallel workers: each gets its own dbt target and log
# folders (manifest, partial parse), inherited by the `totes` processes it starts.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
os.environ["DBT_TARGET_PATH"] = str(REPO / "target" / f"pytest-{_worker}")
os.environ["DBT_LOG_PATH"] = str(REPO / "logs" / f"pytest-{_worker}")


# `pytest -n 2 --dist loadscope --no-loadscope-reorder` hands modules (and test classes) to the
# two workers in collection order. The longest go first, so that both workers finish together:
# by default the crash harness's one-test classes came last and ran alone (simulated from
# --durations=0: 836 s against 654 s per worker, and 742 s against 749 s in this order).
LONGEST_FIRST = (
    "test_postgres_versions.py",
    "test_container.py",
    "test_readme.py",
    "test_crash_recovery.py",
    "test_bench.py",
    "test_continuous.py",
    "test_pipeline_runs.py",
    "test_star_schema.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


def checkout_files(folder: Path) -> None:
    """Give `folder` this checkout's files as they are now: the tracked ones (changed or not)
    and the new ones git does not ignore. A tracked file deleted here is deleted there."""

    def listed(*flags: str) -> list[str]:
        names = subprocess.run(
            ["git", "ls-files", *flags, "-z"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
        return [name for name in names.split("\0") if name]

    for name in listed("--cached", "--others", "--exclude-standard"):
        if (REPO / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, folder / name)
    for name in listed("--deleted"):
        (folder / name).unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """One trust-auth server for the session; each scenario gets its own databases on it.
    Not durable (fsync off): it is thrown away, and its DDL takes about a quarter less time."""
    server = LocalPostgres(tmp_path_factory.mktemp("pg") / "data", free_port(), durable=False)
    server.start()
    yield server
    server.stop()


def create_database(server: LocalPostgres, prefix: str) -> str:
    name = f"{prefix}_{next(_names)}_{os.getpid()}"
    conn = psycopg2.connect(server.url("postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'create database "{name}"')
    conn.close()
    return server.url(name)


def stack_environment(source_url: str, warehouse_url: str, home: Path) -> dict[str, str]:
    """The environment variables that point every part of totes at test resources."""
    return {
        "TOTES_SOURCE_URL": source_url,
        "TOTES_WAREHOUSE_URL": warehouse_url,
        "TOTES_LAKE_URL": str(home / "lake"),
        "TOTES_PROCESSED_URL": str(home / "processed"),
        "TOTES_HOME": str(home),
        # a port nothing listens on: using the embedded server by mistake fails loudly
        "TOTES_LOCAL_PORT": str(free_port()),
        # a lake day folder is compacted as soon as it has two files: every test meets it
        "TOTES_COMPACT_AT_FILES": "2",
    }


def settings_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """This process's environment, minus any TOTES_ setting, plus `settings` (and `extra`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOTES_")}
    env.update(
        TOTES_SOURCE_URL=settings.source_url,
        TOTES_WAREHOUSE_URL=settings.warehouse_url,
        TOTES_LAKE_URL=settings.lake_url,
        TOTES_PROCESSED_URL=settings.processed_url,
        TOTES_DELIVERIES_URL=settings.deliveries_url,
        TOTES_HOME=str(settings.home),
        TOTES_KEY_CHECK_EVERY=str(settings.key_check_every),
        TOTES_COMPACT_AT_FILES=str(settings.compact_at_files),
        **extra,
    )
    return env


def new_stack(
    server: LocalPostgres,
    home: Path,
    s3: S3 | None = None,
    warehouse_server: LocalPostgres | None = None,
) -> Settings:
    """New source and warehouse databases (the warehouse on `warehouse_server`, if given);
    lake and processed zone in `home`, or in new buckets on `s3` when given."""
    env = stack_environment(
        create_database(server, "totesys"),
        create_database(warehouse_server or server, "warehouse"),
        home,
    )
    if s3 is not None:
        env["TOTES_LAKE_URL"] = f"s3://{s3.new_bucket('lake')}/totes"
        env["TOTES_PROCESSED_URL"] = f"s3://{s3.new_bucket('processed')}"
    return load_settings(env, env_file=home / "no.env")


class S3:
    """moto's S3 server, over real HTTP on 127.0.0.1: boto3 and s3fs talk to it as to AWS."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def new_bucket(self, prefix: str) -> str:
        import boto3

        name = f"{prefix}-{next(_names)}-{os.getpid()}"
        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return name

    def new_secret(self, prefix: str, value: str) -> str:
        """A new Secrets Manager secret on the same server, named after `prefix`: its ARN."""
        import boto3

        client = boto3.client("secretsmanager", endpoint_url=self.endpoint)
        name = f"{prefix}-{next(_names)}-{os.getpid()}"
        return str(client.create_secret(Name=name, SecretString=value)["ARN"])


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """One moto S3 server per test session, in its own process (not a thread of this one, which
    runs dbt and dlt too). Its endpoint and test credentials go into this process's
    environment, so `totes` children use them too, through the standard AWS chain."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_for_port(port, server, "moto's server")
    settings = {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    previous = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    yield S3(endpoint)
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.terminate()
    server.wait(timeout=30)


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], what: str, seconds: float = 30
) -> None:
    """Return once `process` (a server, named `what` in errors) listens on 127.0.0.1:`port`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {seconds} s")


def zone_dataset(url: str, *parts: str, **options: Any) -> ds.Dataset:
    """A pyarrow dataset over part of a lake or processed zone, local or on S3."""
    fs, root = filesystem(url)
    return ds.dataset("/".join((root, *parts)), filesystem=arrow_filesystem(fs), **options)


def lake_versions(lake_url: str, table: str) -> list[tuple[object, ...]]:
    """(id, last_updated) of every version of `table` a lake reader gets (completed loads)."""
    lake = Lake(lake_url)
    return [
        (row[f"{table}_id"], row["last_updated"].replace(tzinfo=None))  # naive, as in the source
        for rows in lake.read(table, lake.completed_loads())
        for row in rows.select([f"{table}_id", "last_updated"]).to_pylist()
    ]


@pytest.fixture
def stack(postgres: LocalPostgres, tmp_path: Path) -> Settings:
    """Empty source and warehouse databases, with lake and processed zone in tmp_path."""
    return new_stack(postgres, tmp_path)


def query(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)  # None: a literal % needs no escaping
            return cur.fetchall()
    finally:
        conn.close()


def totes(
    *args: str, env: dict[str, str], cwd: Path, answer: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run the real `totes` console script in a child process, in `cwd` (never the repo, whose
    .env and .totes/ belong to the developer), with `answer` on its standard input. Its log is
    text, as on a terminal, unless `env` asks for JSON."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TOTES_")}
    environ.update({"TOTES_LOG_FORMAT": "text", **env})
    return subprocess.run(
        [str(Path(sys.executable).parent / "totes"), *args],
        env=environ,
        cwd=cwd,
        input=answer,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def execute(url: str, sql: str, params: tuple[object, ...] = ()) -> None:
    """Run statements that change data, committed."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
    finally:
        conn.close()


def columns_by_table(rows: list[tuple[object, ...]]) -> dict[str, list[tuple[object, ...]]]:
    """(table, column, type, nullable) rows -> {table: [(column, type, nullable), ...]}."""
    tables: dict[str, list[tuple[object, ...]]] = {}
    for table, *column in rows:
        tables.setdefault(str(table), []).append(tuple(column))
    return tables


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures tests record (`record_property("figure", ...)`): measurements such as
    the image's size, which belong in the output, not in an assertion on time."""
    figures = [
        f"{report.nodeid.split('::')[-1]}: {value}"
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", [])
        if name == "figure"
    ]
    if figures:
        terminalreporter.section("figures")
        for line in figures:
            terminalreporter.write_line(line)
