"""Connecting to Postgres with errors that name the database and hide the password."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import psycopg2
import sqlalchemy as sa
from psycopg2 import sql
from sqlalchemy.engine import make_url

from ingestion.common.retry import with_retries
from ingestion.config import Settings, describe, sqlalchemy_url
from ingestion.errors import ConnectionFailed, RunInProgress, TransientFailure, UnsupportedServer
from ingestion.local.postgres import ensure_embedded

ENGINES_KEPT = 4  # a run uses two databases; a process that goes through more closes the oldest
_engines: dict[str, sa.Engine] = {}


def shared_engine(url: str) -> sa.Engine:
    """The process's SQLAlchemy engine for a database. The runs of a loop share its pool
    (connections stay open between runs, and are checked before use) and its dialect:
    SQLAlchemy caches reflection queries per dialect instance, so an engine per run grew a
    loop's memory by about 1 MiB a run."""
    if url not in _engines:
        if len(_engines) >= ENGINES_KEPT:  # tests go through many databases
            _engines.pop(next(iter(_engines))).dispose()
        _engines[url] = sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True)
    return _engines[url]


@contextmanager
def reading(url: str) -> Iterator[Any]:
    """A cursor on a connection of its own, closed afterwards: for reads, nothing to commit."""
    connection = psycopg2.connect(url, connect_timeout=10)
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def preflight(
    settings: Settings, *roles: str, on_retry: Callable[[str], None] = lambda _: None
) -> None:
    """Start the embedded Postgres if it serves a URL, then check the named databases answer,
    retrying transient failures for up to settings.retry_seconds."""
    ensure_embedded(settings)
    urls = {"source": settings.source_url, "warehouse": settings.warehouse_url}
    for role in roles or tuple(urls):
        check_connection(urls[role], role, settings.retry_seconds, on_retry)


# The oldest PostgreSQL major still supported upstream; the tests run 15, 16 and 18.
OLDEST_POSTGRES = 15


def check_connection(
    url: str,
    role: str,
    retry_seconds: float = 0,
    on_retry: Callable[[str], None] = lambda _: None,
) -> None:
    """Fail with one clear line if the `role` database ("source", ...) cannot be used: it does
    not answer, or it runs a PostgreSQL older than OLDEST_POSTGRES."""
    where = f"the {role} database at {describe(url)}"
    try:
        version = with_retries(
            lambda: _server_version(url),
            f"connecting to {where}",
            retry_seconds,
            on_retry=lambda message: on_retry(scrub(message, url)),
        )
    except TransientFailure as error:
        raise TransientFailure(scrub(str(error), url)) from None
    except psycopg2.OperationalError as error:
        reason = scrub(" ".join(str(error).split()), url)  # libpq's lines, as one
        raise ConnectionFailed(f"cannot connect to {where}: {reason}") from None
    number, text = version
    if number < OLDEST_POSTGRES * 10000:
        raise UnsupportedServer(
            f"{where} runs PostgreSQL {text}; totes needs PostgreSQL {OLDEST_POSTGRES} or newer "
            f"(README: Supported PostgreSQL versions)",
            role,
        )


def _server_version(url: str) -> tuple[int, str]:
    """The server's version as libpq reports it at connection: (150008, "15.8")."""
    connection = psycopg2.connect(url, connect_timeout=10)
    try:
        text = connection.info.parameter_status("server_version") or "unknown"
        return connection.server_version, text.split()[0]  # "15.8 (Debian 15.8-1)" -> "15.8"
    finally:
        connection.close()


def scrub(text: str, *urls: str) -> str:
    """`text` with the passwords of `urls` masked, as they are and %-escaped, for anything
    printed or logged."""
    for url in urls:
        password = make_url(url).password
        if password:
            forms = {password, quote(password, safe=""), quote(password, safe=" +")}
            for form in sorted(forms, key=len, reverse=True):  # the longest first
                text = text.replace(form, "***")
    return text


# One totes run at a time per warehouse: schedulers can overlap runs.
RUN_LOCK_KEY = 0x7074_6573  # "totes", as a fixed advisory-lock key


@contextmanager
def run_lock(warehouse_url: str) -> Iterator[None]:
    """Hold the warehouse's session-level advisory lock for a run, or raise RunInProgress.

    Postgres releases the lock when the connection ends, even if this process is killed.
    """
    conn = psycopg2.connect(warehouse_url, connect_timeout=10)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,))
            (acquired,) = cur.fetchone()
        if not acquired:
            raise RunInProgress(
                "skipped: another totes run holds this warehouse's run lock; nothing was changed"
            )
        yield
    finally:
        conn.close()


def drop_schema(url: str, schema: str) -> None:
    """Drop a schema and everything in it (views built on it too)."""
    connection = psycopg2.connect(url, connect_timeout=10)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema))
            )
    finally:
        connection.close()
