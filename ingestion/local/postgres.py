"""The embedded PostgreSQL: pgserver's bundled binaries, run on 127.0.0.1 with data under .totes/.

pgserver itself only listens on a unix socket, whose path length and location depend on the
checkout. We drive its `initdb` and `pg_ctl` ourselves so the server listens on a fixed
loopback port, which dbt's profiles.yml can default to.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

from ingestion.config import SOURCE_DB, WAREHOUSE_DB, Settings
from ingestion.errors import ConfigError, TotesError

# Postgres refuses to run as root; pgserver's convention is an OS user of this name.
SERVICE_USER = "pgserver"
SUPERUSER = "postgres"


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    port: int
    data_dir: Path


class LocalPostgres:
    """One embedded server: a data directory and the loopback port it listens on.

    With `password` set, the cluster requires it (scram-sha-256) instead of trusting loopback.
    `bin_dir` holds the server's programs: pgserver's by default, another major's in tests.
    `durable=False` turns fsync off, for servers that are thrown away (the tests'): DDL and
    CREATE DATABASE take about a quarter less time, and an operating-system crash may corrupt
    the data.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        password: str | None = None,
        bin_dir: Path | None = None,
        durable: bool = True,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.password = password
        self.bin_dir = bin_dir or pgserver_bin_dir()
        self.durable = durable

    def url(self, database: str) -> str:
        auth = f"{SUPERUSER}:{quote(self.password, safe='')}" if self.password else SUPERUSER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def status(self) -> Status:
        pid = self._postmaster_pid()
        return Status(running=pid is not None, pid=pid, port=self.port, data_dir=self.data_dir)

    def start(self, databases: tuple[str, ...] = ()) -> None:
        """Start the server if it is not running, and create any missing databases."""
        with self._lock():
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            if self._postmaster_pid() is None:
                self._check_port_free()
                self._pg_ctl(
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(self.data_dir / "server.log"),
                    "-o",
                    # Loopback TCP only, no unix socket: its path would depend on the checkout.
                    f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories='' "
                    "-c synchronous_commit=off -c max_connections=50 "
                    "-c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=4GB "
                    "-c shared_buffers=512MB -c maintenance_work_mem=512MB -c work_mem=64MB"
                    + ("" if self.durable else " -c fsync=off -c full_page_writes=off"),
                )
            self._create_databases(databases)

    def stop(self) -> None:
        """Stop the server and wait until its processes are gone."""
        with self._lock():
            pid = self._postmaster_pid()
            if pid is None:
                return
            self._pg_ctl("stop", "-w", "-t", "60", "-m", "fast")
            deadline = time.monotonic() + 30
            while _process_alive(pid):
                if time.monotonic() > deadline:
                    raise TotesError(f"embedded Postgres (pid {pid}) did not stop within 30 s")
                time.sleep(0.1)

    def _check_port_free(self) -> None:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError:
                raise TotesError(
                    f"cannot start the embedded Postgres: 127.0.0.1:{self.port} is in use "
                    "(another checkout's embedded Postgres?). Stop that one with "
                    "`totes local down` there, or set TOTES_LOCAL_PORT to a free port."
                ) from None

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = ["--encoding=UTF8", "--locale=C", "-U", SUPERUSER]
        if self.password:
            pwfile = self.data_dir.parent / f".{self.data_dir.name}.pw"
            pwfile.touch(mode=0o600)
            pwfile.write_text(self.password)
            self._give_to_service_user(pwfile)
            args += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            args += ["--auth=trust"]
        self._give_to_service_user(self.data_dir)
        try:
            self._run("initdb", "-D", str(self.data_dir), *args)
        finally:
            if self.password:
                pwfile.unlink()

    def _create_databases(self, databases: tuple[str, ...]) -> None:
        if not databases:
            return
        conn = psycopg2.connect(self.url("postgres"), connect_timeout=10)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("select datname from pg_database")
                existing = {row[0] for row in cur.fetchall()}
                for name in databases:
                    if name not in existing:
                        cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        finally:
            conn.close()

    def _postmaster_pid(self) -> int | None:
        """The running postmaster's pid, from postmaster.pid, or None."""
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
        except (FileNotFoundError, IndexError):
            return None
        pid = int(first_line)
        return pid if _process_alive(pid) else None

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), *args)

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(  # noqa: S603 (the server's own programs, no shell)
            [str(self.bin_dir / program), *args],
            user=SERVICE_USER if _is_root() else None,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            output = " ".join((result.stderr or result.stdout).split())
            raise TotesError(
                f"embedded Postgres: {program} failed: {output} "
                f"(server log: {self.data_dir / 'server.log'})"
            )

    def _give_to_service_user(self, path: Path) -> None:
        """As root, let the unprivileged service user own the data and reach it."""
        if not _is_root():
            return
        from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists(SERVICE_USER)
        ensure_prefix_permissions(path)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start/stop between processes (tests and CLI may race)."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir.parent / f".{self.data_dir.name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


def pgserver_bin_dir() -> Path:
    """The embedded server's programs, from pgserver (the `local` dependency group, which the
    production image leaves out)."""
    try:
        with warnings.catch_warnings():
            # its import probes XDG_RUNTIME_DIR, which servers and CI often lack; we never use it
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise ConfigError(
            "the embedded Postgres is not installed here (the production image leaves it "
            "out): set TOTES_SOURCE_URL and TOTES_WAREHOUSE_URL to your databases"
        ) from None
    return Path(POSTGRES_BIN_PATH)


def _is_root() -> bool:
    return os.geteuid() == 0


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


def embedded(settings: Settings) -> LocalPostgres:
    """The embedded server that serves any URL the settings leave unset."""
    return LocalPostgres(settings.home / "postgres", settings.local_port)


def ensure_embedded(settings: Settings) -> None:
    """Start the embedded server, with both databases, if a URL falls back to it."""
    if settings.needs_local_postgres:
        embedded(settings).start(databases=(SOURCE_DB, WAREHOUSE_DB))
