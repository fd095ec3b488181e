"""Which failures are retried, and how: backoff with jitter, bounded by a time budget."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import extensions

from ingestion.common.retry import is_transient, with_retries
from ingestion.errors import ConfigError, TransientFailure


class Wrapped(Exception):
    """Stands for dlt's PipelineStepFailed, which keeps the real error in `.exception`."""

    def __init__(self, exception: BaseException) -> None:
        super().__init__("step failed")
        self.exception = exception


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (psycopg2.OperationalError("connection to server failed: Connection refused"), True),
        (psycopg2.OperationalError("server closed the connection unexpectedly"), True),
        (extensions.TransactionRollbackError("could not serialize access"), True),
        (Wrapped(psycopg2.OperationalError("Connection reset by peer")), True),
        (ConnectionResetError("reset"), True),
        (psycopg2.OperationalError('password authentication failed for user "x"'), False),
        (psycopg2.OperationalError('database "nope" does not exist'), False),
        (Wrapped(psycopg2.ProgrammingError('relation "payment" does not exist')), False),
        (ConfigError("bad setting"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_failures_that_can_heal_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_transient_failure_is_retried_with_growing_jittered_waits() -> None:
    calls, waits, notices = [], [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise psycopg2.OperationalError("Connection refused")
        return "done"

    result = with_retries(flaky, "connecting", 600, notices.append, waits.append)
    assert result == "done" and len(calls) == 4
    assert [0 <= w <= cap for w, cap in zip(waits, [1, 2, 4], strict=True)] == [True] * 3
    assert len(notices) == 3 and "retry 1" in notices[0]


def test_a_permanent_failure_is_not_retried() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise psycopg2.OperationalError('password authentication failed for user "x"')

    with pytest.raises(psycopg2.OperationalError):
        with_retries(broken, "connecting", 600, sleep=lambda _: None)
    assert len(calls) == 1


def test_the_budget_ends_retries_with_a_transient_failure() -> None:
    def down() -> None:
        raise psycopg2.OperationalError("Connection refused")

    with pytest.raises(TransientFailure, match=r"connecting kept failing .* Connection refused"):
        with_retries(down, "connecting", 0, sleep=lambda _: None)
    assert TransientFailure.exit_code == 75
