"""COPY ... TO STDOUT into arrow: every type the star schema uses, the values CSV makes tricky,
and the errors, on a real Postgres."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal

import psycopg2
import pyarrow as pa
import pytest
from psycopg2 import sql

from ingestion.common import copy_out as module
from ingestion.common.copy_out import copy_out, table_schema
from ingestion.local.postgres import LocalPostgres
from tests.conftest import create_database, execute


@pytest.fixture(scope="module")
def url(postgres: LocalPostgres) -> str:
    url = create_database(postgres, "copy_out")
    execute(
        url,
        "create table sample (id integer not null, amount numeric(10, 2), day date, "
        "at time, stamp timestamp, flag boolean not null, name varchar, code varchar(3));"
        "insert into sample values "
        "(1, 12.50, '2024-02-29', '12:34:56.789', '2024-01-01 10:00:00.5', true, "
        "'a, \"quoted\"\nline', 'GBP'),"
        "(2, null, null, null, null, false, '', null);",
    )
    return url


@pytest.fixture
def connection(url: str) -> Iterator[psycopg2.extensions.connection]:
    connection = psycopg2.connect(url)
    yield connection
    connection.close()


def test_every_type_and_tricky_value_comes_out_as_written(
    connection: psycopg2.extensions.connection,
) -> None:
    schema = table_schema(connection, "public", "sample")
    assert schema == pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            ("amount", pa.decimal128(10, 2)),
            ("day", pa.date32()),
            ("at", pa.time64("us")),
            ("stamp", pa.timestamp("us")),
            pa.field("flag", pa.bool_(), nullable=False),
            ("name", pa.string()),
            ("code", pa.string()),
        ]
    )
    query = sql.SQL("select * from sample order by id")
    (table,) = copy_out(connection, query, schema)
    assert table.schema == schema
    assert table.to_pylist() == [
        {
            "id": 1,
            "amount": Decimal("12.50"),
            "day": date(2024, 2, 29),
            "at": time(12, 34, 56, 789000),
            "stamp": datetime(2024, 1, 1, 10, 0, 0, 500000),
            "flag": True,
            "name": 'a, "quoted"\nline',
            "code": "GBP",
        },
        # NULL stays NULL, and an empty string stays an empty string
        {k: None for k in schema.names} | {"id": 2, "flag": False, "name": ""},
    ]


def test_rows_come_in_batches_and_no_rows_is_no_table(
    connection: psycopg2.extensions.connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "BATCH_ROWS", 1000)
    schema = pa.schema([pa.field("n", pa.int64(), nullable=False)])
    many = sql.SQL("select n from generate_series(1, 250000) as n")
    tables = list(copy_out(connection, many, schema))
    assert sum(t.num_rows for t in tables) == 250_000
    assert [t.num_rows for t in tables] == [1000] * 250
    assert pa.concat_tables(tables).column("n").to_pylist() == list(range(1, 250_001))
    assert list(copy_out(connection, sql.SQL("select 1 where false"), schema)) == []


def test_a_query_that_fails_midway_raises_the_database_error(
    connection: psycopg2.extensions.connection,
) -> None:
    schema = pa.schema([("n", pa.int64())])
    failing = sql.SQL("select 100000 / (n - 200000) from generate_series(1, 300000) as n")
    with pytest.raises(psycopg2.errors.DivisionByZero):
        list(copy_out(connection, failing, schema))
    connection.rollback()  # the caller's connection, the caller's transaction
    with pytest.raises(psycopg2.errors.UndefinedTable):
        list(copy_out(connection, sql.SQL("select * from missing"), schema))


def test_a_reader_that_stops_early_leaves_no_thread_behind(
    connection: psycopg2.extensions.connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "BATCH_ROWS", 1000)
    before = threading.active_count()
    schema = pa.schema([("n", pa.int64())])
    rows = copy_out(connection, sql.SQL("select generate_series(1, 5000000)"), schema)
    assert next(rows).num_rows >= 1000
    rows.close()
    assert threading.active_count() == before


def test_a_type_without_an_arrow_mapping_is_named(url: str) -> None:
    execute(url, "create table odd (spot point)")
    connection = psycopg2.connect(url)
    try:
        with pytest.raises(TypeError, match="point"):
            table_schema(connection, "public", "odd")
    finally:
        connection.close()
