"""The extract's COPY backend for dlt's sql_database: the same arrow tables as dlt's own pyarrow
backend (so the lake's files keep their types), the same incremental WHERE clause, on a real
Postgres with the values CSV makes tricky."""

from __future__ import annotations

from datetime import datetime

import dlt
import pyarrow as pa
import pytest
from dlt.sources.sql_database import sql_table

from ingestion.config import sqlalchemy_url
from ingestion.extract import copy_backend
from ingestion.local.postgres import LocalPostgres
from tests.conftest import create_database, execute

HINTS = {"last_updated": {"data_type": "timestamp", "timezone": True, "precision": 3}}


@pytest.fixture(scope="module")
def url(postgres: LocalPostgres) -> str:
    url = create_database(postgres, "copy_backend")
    execute(
        url,
        "create type kind as enum ('SALE', 'PURCHASE');"
        "create table sample (sample_id serial primary key, amount numeric(10, 2) not null, "
        "  kind kind, paid boolean, note varchar, code varchar(3), "
        "  due date, at time, last_updated timestamp not null);"
        "insert into sample (amount, kind, paid, note, code, due, at, last_updated) values "
        "(12.50, 'SALE', true, 'a, \"quoted\"\nline, 50%', 'GBP', '2024-02-29', '12:34:56.789',"
        " '2024-01-01 10:00:00.123'),"
        "(-0.01, null, null, '', null, null, null, '2024-01-01 10:00:00'),"
        "(99999999.99, 'PURCHASE', false, 'naïve ✓', 'EUR', '1999-12-31', '00:00:00',"
        " '2024-03-01 23:59:59.999');",
    )
    return url


def read(url: str, backend: str, since: datetime | None = None) -> pa.Table:
    resource = sql_table(
        credentials=sqlalchemy_url(url),
        table="sample",
        backend=backend,  # type: ignore[arg-type]
        reflection_level="full_with_precision",
    )
    resource.apply_hints(
        columns=HINTS,
        incremental=dlt.sources.incremental("last_updated", initial_value=since),
    )
    return pa.concat_tables(list(resource)).sort_by("sample_id")


def test_copy_backend_gives_the_pyarrow_backends_tables(url: str) -> None:
    copied = read(url, copy_backend.BACKEND)
    fetched = read(url, "pyarrow")

    assert copied.schema == fetched.schema
    assert copied.equals(fetched)
    assert copied.column("last_updated").type == pa.timestamp("ms", tz="UTC")
    assert copied.column("note").to_pylist() == ['a, "quoted"\nline, 50%', "", "naïve ✓"]


def test_copy_backend_reads_only_from_the_incremental_cursor_on(url: str) -> None:
    since = datetime(2024, 1, 1, 10, 0, 0, 123000)
    copied = read(url, copy_backend.BACKEND, since)

    assert copied.column("sample_id").to_pylist() == [1, 3]  # closed range: the cursor row too
    assert copied.equals(read(url, "pyarrow", since))


def test_a_query_that_fails_raises_the_database_error(url: str) -> None:
    execute(url, "create table broken (broken_id integer, last_updated timestamp)")
    resource = sql_table(
        credentials=sqlalchemy_url(url), table="broken", backend=copy_backend.BACKEND
    )
    execute(url, "drop table broken")  # gone between reflection and COPY

    with pytest.raises(Exception, match='relation "broken" does not exist'):
        list(resource)
