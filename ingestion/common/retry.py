"""Retries for transient failures: exponential backoff with full jitter, bounded in time.

Transient: the network or the server blinked (connection refused or reset, a server restart,
a serialization failure, an S3 5xx). Retrying the same stage is safe because every stage is
idempotent. Anything else (bad credentials, a missing table, a failed dbt test) is permanent
and fails at once: waiting would not fix it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg2
from psycopg2 import extensions

from ingestion.errors import TotesError, TransientFailure

T = TypeVar("T")

# Postgres SQLSTATEs that mean "try again": serialization failure, deadlock, admin shutdown,
# crash shutdown, cannot connect now (starting up), and the connection-exception class.
TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03"}
PERMANENT_MESSAGES = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "permission denied",
)


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps (dlt's PipelineStepFailed, SQLAlchemy's .orig, ...)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [
            current.__cause__,
            current.__context__,
            getattr(current, "exception", None),  # dlt
            getattr(current, "orig", None),  # SQLAlchemy
        ]


def is_transient(error: BaseException) -> bool:
    for cause in causes(error):
        if isinstance(cause, TotesError):
            return isinstance(cause, TransientFailure)
        if isinstance(cause, extensions.TransactionRollbackError):
            return True
        if isinstance(cause, psycopg2.OperationalError):
            text = str(cause).lower()
            if any(message in text for message in PERMANENT_MESSAGES):
                return False
            # no SQLSTATE: the connection itself failed (refused, reset, closed, timed out)
            return cause.pgcode is None or cause.pgcode in TRANSIENT_SQLSTATES
        status = getattr(cause, "response", {}) or {}
        if (
            isinstance(status, dict)
            and status.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
        ):
            return True  # S3 (botocore) server error
        if isinstance(cause, ConnectionError | TimeoutError):
            return True
    return False


def with_retries(
    work: Callable[[], T],
    what: str,
    budget_seconds: float,
    on_retry: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
    first_delay: float = 1.0,
) -> T:
    """Run `work`; after a transient failure wait 1, 2, 4 ... s (full jitter) and run it again,
    until the budget is spent. Then raise TransientFailure, so the scheduler retries later."""
    started, attempt = time.monotonic(), 0
    while True:
        attempt += 1
        try:
            return work()
        except Exception as error:
            if not is_transient(error):
                raise
            delay = random.uniform(0, first_delay * 2 ** (attempt - 1))  # noqa: S311 (jitter, not a secret)
            if time.monotonic() - started + delay > budget_seconds:
                raise TransientFailure(
                    f"{what} kept failing for {time.monotonic() - started:.0f} s over {attempt} "
                    f"attempts, the last with: {_first_line(error)}"
                ) from error
            on_retry(f"{what} failed ({_first_line(error)}); retry {attempt} in {delay:.1f} s")
            sleep(delay)


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] or type(error).__name__
