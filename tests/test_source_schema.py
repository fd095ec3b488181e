"""`totes source init` creates the totesys schema exactly as the source spec describes it."""

from __future__ import annotations

import re

import psycopg2
import pytest

from ingestion.common.progress import rows_progress
from ingestion.config import Settings
from ingestion.errors import TotesError
from ingestion.extract import TABLES
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.generate import (
    Sizes,
    build_tables,
    copy_arrow,
    init_source,
    pgpq,
    schema_sql,
)
from tests.conftest import columns_by_table, create_database, query

# From shared/spec/totesys-source.md: (column, type, nullable) besides created_at/last_updated.
SPEC: dict[str, list[tuple[str, str, bool]]] = {
    "address": [
        ("address_id", "integer", False),
        ("address_line_1", "text", False),
        ("address_line_2", "text", True),
        ("district", "text", True),
        ("city", "text", False),
        ("postal_code", "text", False),
        ("country", "text", False),
        ("phone", "text", False),
    ],
    "counterparty": [
        ("counterparty_id", "integer", False),
        ("counterparty_legal_name", "text", False),
        ("legal_address_id", "integer", False),
        ("commercial_contact", "text", True),
        ("delivery_contact", "text", True),
    ],
    "currency": [
        ("currency_id", "integer", False),
        ("currency_code", "character varying(3)", False),
    ],
    "department": [
        ("department_id", "integer", False),
        ("department_name", "text", False),
        ("location", "text", True),
        ("manager", "text", True),
    ],
    "design": [
        ("design_id", "integer", False),
        ("design_name", "text", False),
        ("file_location", "text", False),
        ("file_name", "text", False),
    ],
    "staff": [
        ("staff_id", "integer", False),
        ("first_name", "text", False),
        ("last_name", "text", False),
        ("department_id", "integer", False),
        ("email_address", "text", False),
    ],
    "payment_type": [
        ("payment_type_id", "integer", False),
        ("payment_type_name", '"PaymentTypeName"', False),
    ],
    "sales_order": [
        ("sales_order_id", "integer", False),
        ("design_id", "integer", False),
        ("staff_id", "integer", False),
        ("counterparty_id", "integer", False),
        ("units_sold", "integer", False),
        ("unit_price", "numeric(10,2)", False),
        ("currency_id", "integer", False),
        ("agreed_delivery_date", "text", False),
        ("agreed_payment_date", "text", False),
        ("agreed_delivery_location_id", "integer", False),
    ],
    "purchase_order": [
        ("purchase_order_id", "integer", False),
        ("staff_id", "integer", False),
        ("counterparty_id", "integer", False),
        ("item_code", "text", False),
        ("item_quantity", "integer", False),
        ("item_unit_price", "numeric(10,2)", False),
        ("currency_id", "integer", False),
        ("agreed_delivery_date", "text", False),
        ("agreed_payment_date", "text", False),
        ("agreed_delivery_location_id", "integer", False),
    ],
    "transaction": [
        ("transaction_id", "integer", False),
        ("transaction_type", '"TransactionType"', False),
        ("sales_order_id", "integer", True),
        ("purchase_order_id", "integer", True),
    ],
    "payment": [
        ("payment_id", "integer", False),
        ("transaction_id", "integer", False),
        ("counterparty_id", "integer", False),
        ("payment_amount", "numeric(10,2)", False),
        ("currency_id", "integer", False),
        ("payment_type_id", "integer", False),
        ("paid", "boolean", False),
        ("payment_date", "text", False),
        ("company_ac_number", "integer", False),
        ("counterparty_ac_number", "integer", False),
    ],
}
TIMESTAMPS = [
    ("created_at", "timestamp(3) without time zone", False),
    ("last_updated", "timestamp(3) without time zone", False),
]
# (table, column) -> (referenced table, on delete); every FK is ON UPDATE CASCADE.
FOREIGN_KEYS = {
    ("counterparty", "legal_address_id"): ("address", "r"),
    ("staff", "department_id"): ("department", "r"),
    ("sales_order", "design_id"): ("design", "r"),
    ("sales_order", "staff_id"): ("staff", "r"),
    ("sales_order", "counterparty_id"): ("counterparty", "r"),
    ("sales_order", "currency_id"): ("currency", "r"),
    ("sales_order", "agreed_delivery_location_id"): ("address", "r"),
    ("purchase_order", "staff_id"): ("staff", "r"),
    ("purchase_order", "counterparty_id"): ("counterparty", "r"),
    ("purchase_order", "currency_id"): ("currency", "r"),
    ("purchase_order", "agreed_delivery_location_id"): ("address", "r"),
    ("transaction", "sales_order_id"): ("sales_order", "n"),
    ("transaction", "purchase_order_id"): ("purchase_order", "n"),
    ("payment", "transaction_id"): ("transaction", "r"),
    ("payment", "counterparty_id"): ("counterparty", "r"),
    ("payment", "currency_id"): ("currency", "r"),
    ("payment", "payment_type_id"): ("payment_type", "r"),
}


@pytest.fixture(scope="module")
def source_url(postgres: LocalPostgres) -> str:
    url = create_database(postgres, "schema")
    init_source(url, scale=0.01, seed=1)
    return url


def test_every_table_has_the_spec_columns_types_and_nullability(source_url: str) -> None:
    rows = query(
        source_url,
        "select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), not a.attnotnull "
        "from pg_attribute a join pg_class c on c.oid = a.attrelid "
        "join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped "
        "order by c.relname, a.attnum",
    )
    actual = columns_by_table(rows)
    expected = {table: columns + TIMESTAMPS for table, columns in SPEC.items()}
    prisma = actual.pop("_prisma_migrations")
    assert actual == expected
    assert [c[0] for c in prisma][:2] == ["id", "checksum"]


def test_enum_types_are_quoted_mixed_case_with_spec_values(source_url: str) -> None:
    rows = query(
        source_url,
        "select t.typname, array_agg(e.enumlabel order by e.enumsortorder) "
        "from pg_type t join pg_enum e on e.enumtypid = t.oid group by t.typname order by 1",
    )
    assert rows == [
        (
            "PaymentTypeName",
            ["SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND"],
        ),
        ("TransactionType", ["SALE", "PURCHASE"]),
    ]


def test_foreign_keys_cascade_on_update_and_restrict_or_null_on_delete(source_url: str) -> None:
    rows = query(
        source_url,
        "select c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, "
        "c.confupdtype, c.confdeltype, c.convalidated from pg_constraint c "
        "join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1] "
        "where c.contype = 'f'",
    )
    actual = {(t, col): (ref, on_delete) for t, col, ref, _, on_delete, _ in rows}
    assert actual == FOREIGN_KEYS
    assert {row[3] for row in rows} == {"c"}
    # declared NOT VALID for the bulk load, then validated: as if declared inline
    assert {row[5] for row in rows} == {True}


def test_one_to_one_links_have_unique_indexes(source_url: str) -> None:
    rows = query(
        source_url,
        "select indexrelid::regclass::text from pg_index i "
        "join pg_class c on c.oid = i.indrelid where i.indisunique and not i.indisprimary "
        "and c.relnamespace = 'public'::regnamespace order by 1",
    )
    assert [r[0] for r in rows] == [
        "payment_transaction_id_key",
        "transaction_purchase_order_id_key",
        "transaction_sales_order_id_key",
    ]


def test_sequences_continue_after_the_generated_ids(source_url: str) -> None:
    for table in TABLES:
        ((max_id, next_id),) = query(
            source_url,
            f"select max({table}_id), nextval(pg_get_serial_sequence('{table}', '{table}_id')) "
            f"from {table}",
        )
        assert next_id == max_id + 1, table


def test_scale_one_is_about_the_real_size_and_grows_linearly() -> None:
    one, ten = Sizes.for_scale(1), Sizes.for_scale(10)
    assert (one.sales_orders, one.purchase_orders, one.designs) == (11_200, 4_650, 470)
    assert ten.sales_orders == 10 * one.sales_orders
    assert ten.addresses == 10 * one.addresses


def test_data_is_deterministic_for_a_seed_and_follows_the_spec_ranges() -> None:
    sizes = Sizes.for_scale(0.05)
    first, again, other = build_tables(sizes, 3), build_tables(sizes, 3), build_tables(sizes, 4)
    assert sum(table.num_rows for table in first.values()) == sizes.total_rows  # the progress bar
    assert all(first[t].equals(again[t]) for t in TABLES)
    assert not first["sales_order"].equals(other["sales_order"])
    sales = first["sales_order"].to_pydict()
    assert min(sales["units_sold"]) >= 1_001 and max(sales["units_sold"]) <= 99_973
    assert all(2 <= float(p) <= 4 for p in sales["unit_price"])
    payments = first["payment"].to_pydict()
    assert len(payments["payment_id"]) == len(first["transaction"])
    assert 0.5 < sum(payments["paid"]) / len(payments["paid"]) < 0.7
    codes = first["purchase_order"]["item_code"].to_pylist()
    assert all(re.fullmatch("[A-Z0-9]{7}", code) for code in codes)


@pytest.mark.skipif(pgpq is None, reason="pgpq has no wheel for this platform")
def test_binary_copy_writes_exactly_the_rows_the_csv_fallback_writes(
    postgres: LocalPostgres,
) -> None:
    tables = build_tables(Sizes.for_scale(0.05), seed=5)
    contents = []
    for binary in (True, False):
        url = create_database(postgres, "binary" if binary else "csv")
        conn = psycopg2.connect(url)
        with conn, conn.cursor() as cur, rows_progress(0, "copy") as progress:
            cur.execute(schema_sql())
            copy_arrow(conn, tables.items(), progress, binary=binary)
        conn.close()
        contents.append(
            [
                query(
                    url,
                    f"select count(*), md5(string_agg(t::text, '|' order by {table}_id)) "
                    f"from {table} t",
                )[0]
                for table in TABLES
            ]
        )
    assert [count for count, _ in contents[0]] == [tables[t].num_rows for t in TABLES]
    assert contents[0] == contents[1]


def test_init_refuses_to_overwrite_an_existing_source(stack: Settings) -> None:
    init_source(stack.source_url, scale=0.01, seed=1)
    before = query(stack.source_url, "select count(*) from sales_order")
    with pytest.raises(TotesError, match=r"already has 12 tables.*--reset"):
        init_source(stack.source_url, scale=0.01, seed=2)
    assert query(stack.source_url, "select count(*) from sales_order") == before
