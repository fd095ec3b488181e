"""`totes source init`: the totesys schema, filled with deterministic, realistic fake data.

Sizes and value ranges follow the "What the real data looks like" table of the source spec;
scale 1 is about the size of the November 2024 snapshot, and sizes grow linearly with scale.
The big tables are built column-wise with numpy and written with COPY in Postgres's binary
format (pgpq encodes arrow to it), which the server takes in half the time of CSV: it parses no
text. Where pgpq has no wheel (Linux or Windows on ARM), COPY sends CSV. Each table is built in
a thread while the one before it is written, and the keys are added after the data.
"""

from __future__ import annotations

import io
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, TypeVar

import numpy as np
import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from faker import Faker
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from ingestion.common.progress import rows_progress
from ingestion.errors import TotesError
from ingestion.extract import TABLES

try:
    import pgpq
except ImportError:  # no wheel for this platform (see pyproject.toml): COPY sends CSV
    pgpq = None

SNAPSHOT_START = datetime(2022, 11, 3, 14, 20, 49, 962000)
SNAPSHOT_END = datetime(2024, 11, 15, 17, 0, 0)
CURRENCIES = ("GBP", "USD", "EUR")
PAYMENT_TYPES = ("SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND")
DEPARTMENTS = (
    ("Sales", "Manchester"),
    ("Purchasing", "Manchester"),
    ("Production", "Leeds"),
    ("Dispatch", "Leds"),  # misspelled, as in the real data
    ("Finance", "Manchester"),
    ("Facilities", "Manchester"),
    ("Communications", "Leeds"),
    ("HR", "Leeds"),
)
MATERIALS = (
    "Wooden", "Bronze", "Steel", "Granite", "Cotton", "Rubber", "Plastic", "Fresh", "Frozen",
    "Soft", "Concrete", "Metal", "Bamboo", "Silk", "Leather", "Linen", "Wool", "Marble", "Gold",
    "Silver", "Copper", "Ceramic", "Glass", "Velvet",
)  # fmt: skip
EMAIL_DOMAIN = "terrifictotes.com"
COPY_ROWS = 100_000  # rows per COPY statement
# connections that build the keys at once: the server spends a core on each
KEY_CONNECTIONS = 2

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Sizes:
    addresses: int
    counterparties: int
    staff: int
    designs: int
    sales_orders: int
    purchase_orders: int

    @classmethod
    def for_scale(cls, scale: float) -> Sizes:
        def n(base: int) -> int:
            return max(1, round(base * scale))

        return cls(n(30), n(20), n(20), n(470), n(11_200), n(4_650))

    @property
    def total_rows(self) -> int:
        """Rows of the eleven tables: each order has a transaction and a payment."""
        lookups = len(CURRENCIES) + len(DEPARTMENTS) + len(PAYMENT_TYPES)
        orders = self.sales_orders + self.purchase_orders
        return (
            self.addresses + self.counterparties + self.staff + self.designs + lookups + 3 * orders
        )


def schema_sql(name: str = "schema.sql") -> str:
    """The tables (schema.sql), or their keys (constraints.sql)."""
    return resources.files("ingestion.local.source").joinpath(name).read_text()


def init_source(url: str, scale: float, seed: int, reset: bool = False) -> dict[str, int]:
    """Create the schema in an empty source database and fill it. Returns rows per table."""
    if scale <= 0:
        raise TotesError("--scale must be positive")
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            _prepare_empty_schema(cur, reset)
            cur.execute(schema_sql())
            sizes = Sizes.for_scale(scale)
            # each table is built in a thread while the one before it is written
            tables = _ahead(iter_tables(sizes, seed))
            with rows_progress(sizes.total_rows, "writing totesys") as progress:
                rows = copy_arrow(conn, tables, progress)
            for name in TABLES:
                _sync_sequence(cur, name)
            cur.execute(
                "insert into _prisma_migrations (id, checksum, finished_at, migration_name, "
                "applied_steps_count) values (%s, %s, now(), %s, 1)",
                ("00000000-0000-4000-8000-000000000001", "0" * 64, "20221103000000_init"),
            )
    finally:
        conn.close()
    add_keys(url, rows)
    return rows


def add_keys(url: str, rows: dict[str, int]) -> None:
    """The keys of constraints.sql, added to the loaded tables (`rows`: their sizes): the
    indexes, tables side by side on KEY_CONNECTIONS connections, the largest first; then the
    foreign keys, declared NOT VALID (no rows read); then their validation, side by side in the
    same way (a validation locks its own table, not the one it references, against another).
    If it fails, the data stays without some keys: init again with --reset."""
    statements = [s.strip() for s in schema_sql("constraints.sql").split(";") if s.strip()]
    foreign = [s for s in statements if "foreign key" in s]
    _per_table(url, rows, _by_table([s for s in statements if s not in foreign]))
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(";\n".join(foreign))
            cur.execute(
                "select t.relname, c.conname from pg_constraint c "
                "join pg_class t on t.oid = c.conrelid where c.contype = 'f' "
                "and not c.convalidated and c.connamespace = 'public'::regnamespace "
                "order by c.conname"
            )
            pending = cur.fetchall()
    finally:
        conn.close()
    validations: dict[str, list[sql.Composable | str]] = {}
    for table, name in pending:
        validations.setdefault(table, []).append(
            sql.SQL("alter table {} validate constraint {}").format(
                sql.Identifier(table), sql.Identifier(name)
            )
        )
    _per_table(url, rows, validations)


def _by_table(statements: list[str]) -> dict[str, list[sql.Composable | str]]:
    """Statements of constraints.sql by the table they alter or index."""
    by_table: dict[str, list[sql.Composable | str]] = {}
    for statement in statements:
        table = re.search(r"^(?:alter table|create unique index \w+ on) (\w+)", statement, re.M)
        if table is None:
            raise ValueError(f"constraints.sql: no table in {statement!r}")
        by_table.setdefault(table[1], []).append(statement)
    return by_table


def _per_table(
    url: str, rows: dict[str, int], by_table: dict[str, list[sql.Composable | str]]
) -> None:
    """Each table's statements in order, on a connection of its own (autocommit), up to
    KEY_CONNECTIONS tables at once, the largest first."""

    def run(statements: list[sql.Composable | str]) -> None:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    largest_first = sorted(by_table, key=lambda table: -rows.get(table, 0))
    with ThreadPoolExecutor(max_workers=KEY_CONNECTIONS) as pool:
        for done in [pool.submit(run, by_table[table]) for table in largest_first]:
            done.result()


def existing_tables(url: str) -> int:
    """How many tables the database's public schema holds."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            return _count_tables(cur)
    finally:
        conn.close()


def _count_tables(cur: psycopg2.extensions.cursor) -> int:
    cur.execute("select count(*) from information_schema.tables where table_schema = 'public'")
    (existing,) = cur.fetchone()
    return int(existing)


def _prepare_empty_schema(cur: psycopg2.extensions.cursor, reset: bool) -> None:
    existing = _count_tables(cur)
    if existing and not reset:
        raise TotesError(
            f"the source database already has {existing} tables in schema public; "
            "pass --reset to drop them (this deletes the data)"
        )
    if existing:
        cur.execute("drop schema public cascade; create schema public")


def _sync_sequence(cur: psycopg2.extensions.cursor, table: str) -> None:
    cur.execute(
        sql.SQL(
            "select setval(pg_get_serial_sequence(%s, %s), coalesce(max({}), 1)) from {}"
        ).format(sql.Identifier(f"{table}_id"), sql.Identifier(table)),
        (table, f"{table}_id"),
    )


def copy_arrow(
    conn: Connection,
    tables: Iterable[tuple[str, pa.Table]],
    progress: Any,
    binary: bool = pgpq is not None,
) -> dict[str, int]:
    """Bulk-load (name, arrow table) pairs with COPY, in slices so memory stays flat at any
    scale, in the binary format or as CSV. `progress` is a rows_progress counter. Returns rows
    per table."""
    rows: dict[str, int] = {}
    with conn.cursor() as cur:

        def slices() -> Iterator[tuple[str, pa.RecordBatch]]:
            for name, table in tables:
                rows[name] = table.num_rows
                for batch in _as_column_types(cur, name, table).to_batches(COPY_ROWS):
                    yield name, batch

        encode, copy_format = (_binary, "binary") if binary else (_csv, "csv")
        for (name, batch), buffer in _one_ahead(slices(), lambda item: encode(item[1])):
            progress.set_postfix_str(name)
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in batch.schema.names)
            statement = sql.SQL("copy {} ({}) from stdin with (format {})").format(
                sql.Identifier(name), columns, sql.SQL(copy_format)
            )
            cur.copy_expert(statement.as_string(cur), buffer)
            progress.update(batch.num_rows)
    return rows


def _as_column_types(cur: Cursor, table_name: str, table: pa.Table) -> pa.Table:
    """The binary format carries no types, so each column must be sent as its table column's
    type: numpy's int64 becomes int32 for an `integer` column (an overflow raises), and a column
    of nothing but NULLs (arrow's null type, at a tiny scale) becomes text."""
    cur.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'public' and table_name = %s",
        (table_name,),
    )
    column_types = dict(cur.fetchall())
    widths = {"smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64()}

    def sent_as(field: pa.Field) -> pa.Field:
        if pa.types.is_integer(field.type):
            return field.with_type(widths.get(column_types[field.name], field.type))
        return field.with_type(pa.string()) if pa.types.is_null(field.type) else field

    return table.cast(pa.schema(sent_as(field) for field in table.schema))


def _binary(batch: pa.RecordBatch) -> io.BytesIO:
    encoder = pgpq.ArrowToPostgresBinaryEncoder(batch.schema)
    return io.BytesIO(encoder.write_header() + encoder.write_batch(batch) + encoder.finish())


def _csv(batch: pa.RecordBatch) -> io.BytesIO:
    buffer = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    pacsv.write_csv(pa.Table.from_batches([batch]), buffer, options)
    buffer.seek(0)
    return buffer


def _one_ahead(items: Iterable[T], work: Callable[[T], R]) -> Iterator[tuple[T, R]]:
    """(item, work(item)) for each item, with the next item's work running in a thread while
    the caller handles this one: encoding a slice overlaps the server's COPY of the one before
    (pyarrow and psycopg2 release the GIL), and only two slices are in memory at once."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: deque[tuple[T, Future[R]]] = deque()
        for item in items:
            pending.append((item, pool.submit(work, item)))
            if len(pending) == 2:
                done, result = pending.popleft()
                yield done, result.result()
        for done, result in pending:
            yield done, result.result()


def build_tables(sizes: Sizes, seed: int) -> dict[str, pa.Table]:
    """All eleven tables as arrow tables, deterministic for a given seed."""
    return dict(iter_tables(sizes, seed))


def iter_tables(sizes: Sizes, seed: int) -> Iterator[tuple[str, pa.Table]]:
    """build_tables, a table at a time (the random draws happen in the same order)."""
    rng = np.random.default_rng(seed)
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    start = SNAPSHOT_START
    yield "address", _addresses(sizes.addresses, fake, rng, start)
    yield "counterparty", _counterparties(sizes, fake, rng, start)
    yield "currency", _lookup("currency", "currency_code", CURRENCIES, start)
    yield "department", _departments(fake, start)
    yield "design", _designs(sizes.designs, fake, rng)
    yield "staff", _staff(sizes.staff, fake, rng, start)
    yield "payment_type", _lookup("payment_type", "payment_type_name", PAYMENT_TYPES, start)
    yield from _orders(sizes, rng)


def _ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of `items`, each next one produced in a thread while the caller handles the
    one before (numpy, pyarrow and psycopg2's COPY release the GIL)."""
    done = object()
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(next, items, done)
        while (item := upcoming.result()) is not done:
            upcoming = pool.submit(next, items, done)
            yield item


def _timestamps(values: list[datetime] | np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype="datetime64[ms]"), type=pa.timestamp("ms"))


def _lookup(table: str, column: str, values: tuple[str, ...], at: datetime) -> pa.Table:
    n = len(values)
    stamps = _timestamps([at] * n)
    return pa.table(
        {
            f"{table}_id": range(1, n + 1),
            column: values,
            "created_at": stamps,
            "last_updated": stamps,
        }
    )


def _addresses(n: int, fake: Faker, rng: np.random.Generator, at: datetime) -> pa.Table:
    stamps = _timestamps([at] * n)
    return pa.table(
        {
            "address_id": range(1, n + 1),
            "address_line_1": [fake.street_address() for _ in range(n)],
            "address_line_2": [
                fake.street_name() if rng.random() < 1 / 3 else None for _ in range(n)
            ],
            "district": [fake.county() if rng.random() < 0.5 else None for _ in range(n)],
            "city": [fake.city() for _ in range(n)],
            "postal_code": [fake.postcode() for _ in range(n)],
            "country": [fake.country() for _ in range(n)],
            "phone": [fake.phone_number() for _ in range(n)],
            "created_at": stamps,
            "last_updated": stamps,
        }
    )


def _counterparties(sizes: Sizes, fake: Faker, rng: np.random.Generator, at: datetime) -> pa.Table:
    n = sizes.counterparties
    stamps = _timestamps([at] * n)
    return pa.table(
        {
            "counterparty_id": range(1, n + 1),
            "counterparty_legal_name": [fake.company() for _ in range(n)],
            "legal_address_id": rng.integers(1, sizes.addresses + 1, n),
            "commercial_contact": [fake.name() for _ in range(n)],
            "delivery_contact": [fake.name() for _ in range(n)],
            "created_at": stamps,
            "last_updated": stamps,
        }
    )


def _departments(fake: Faker, at: datetime) -> pa.Table:
    n = len(DEPARTMENTS)
    stamps = _timestamps([at] * n)
    return pa.table(
        {
            "department_id": range(1, n + 1),
            "department_name": [name for name, _ in DEPARTMENTS],
            "location": [location for _, location in DEPARTMENTS],
            "manager": [fake.name() for _ in range(n)],
            "created_at": stamps,
            "last_updated": stamps,
        }
    )


def _designs(n: int, fake: Faker, rng: np.random.Generator) -> pa.Table:
    created = _spread(n, rng)
    names = np.array(MATERIALS)[rng.integers(0, len(MATERIALS), n)]
    words = np.array(fake.get_words_list())
    folders, files = words[rng.integers(0, len(words), (2, n))]
    days = pc.strftime(_timestamps(created), "%Y%m%d")
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    suffixes = letters[rng.integers(0, len(letters), (n, 4))].view("<U4").ravel()
    return pa.table(
        {
            "design_id": range(1, n + 1),
            "design_name": names,
            "file_location": pc.binary_join_element_wise("", folders, files, "/"),  # /a/b
            "file_name": pc.binary_join_element_wise(
                pc.binary_join_element_wise(pc.utf8_lower(names), days, suffixes, "-"), ".json", ""
            ),
            "created_at": _timestamps(created),
            "last_updated": _timestamps(created),
        }
    )


def _staff(n: int, fake: Faker, rng: np.random.Generator, at: datetime) -> pa.Table:
    first = [fake.first_name() for _ in range(n)]
    last = [fake.last_name() for _ in range(n)]
    stamps = _timestamps([at] * n)
    return pa.table(
        {
            "staff_id": range(1, n + 1),
            "first_name": first,
            "last_name": last,
            "department_id": rng.integers(1, len(DEPARTMENTS) + 1, n),
            "email_address": [
                f"{f.lower()}.{s.lower()}@{EMAIL_DOMAIN}" for f, s in zip(first, last, strict=True)
            ],
            "created_at": stamps,
            "last_updated": stamps,
        }
    )


def _spread(n: int, rng: np.random.Generator) -> np.ndarray:
    """n sorted millisecond timestamps spread over the snapshot period."""
    span = int((SNAPSHOT_END - SNAPSHOT_START).total_seconds() * 1000)
    offsets = np.sort(rng.integers(0, span, n))
    return np.datetime64(SNAPSHOT_START, "ms") + offsets.astype("timedelta64[ms]")


def _iso_dates_after(stamps: np.ndarray, rng: np.random.Generator, low: int, high: int) -> pa.Array:
    days = stamps.astype("datetime64[D]") + rng.integers(low, high + 1, len(stamps))
    return pa.array(days).cast(pa.string())  # YYYY-MM-DD


def _orders(sizes: Sizes, rng: np.random.Generator) -> Iterator[tuple[str, pa.Table]]:
    """Sales and purchase orders, arriving over time, each with its transaction and payment."""
    n_sales, n_purchases = sizes.sales_orders, sizes.purchase_orders
    n = n_sales + n_purchases
    stamps = _spread(n, rng)
    is_sale = np.zeros(n, dtype=bool)
    is_sale[rng.choice(n, n_sales, replace=False)] = True
    sale_at, purchase_at = stamps[is_sale], stamps[~is_sale]

    sales_counterparty = rng.integers(1, sizes.counterparties + 1, n_sales)
    units = rng.integers(1_001, 99_974, n_sales)
    unit_cents = rng.integers(200, 401, n_sales)
    sales_currency = rng.integers(1, 4, n_sales)
    sales_order = pa.table(
        {
            "sales_order_id": np.arange(1, n_sales + 1),
            "design_id": rng.integers(1, sizes.designs + 1, n_sales),
            "staff_id": rng.integers(1, sizes.staff + 1, n_sales),
            "counterparty_id": sales_counterparty,
            "units_sold": units,
            "unit_price": _money(unit_cents),
            "currency_id": sales_currency,
            "agreed_delivery_date": _iso_dates_after(sale_at, rng, 2, 7),
            "agreed_payment_date": _iso_dates_after(sale_at, rng, 1, 7),
            "agreed_delivery_location_id": rng.integers(1, sizes.addresses + 1, n_sales),
            "created_at": _timestamps(sale_at),
            "last_updated": _timestamps(sale_at),
        }
    )
    yield "sales_order", sales_order

    purchase_counterparty = rng.integers(1, sizes.counterparties + 1, n_purchases)
    quantity = rng.integers(1, 1_001, n_purchases)
    price_cents = rng.integers(100, 99_999, n_purchases)
    purchase_currency = rng.integers(1, 4, n_purchases)
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    codes = alphabet[rng.integers(0, len(alphabet), (n_purchases, 7))]
    purchase_order = pa.table(
        {
            "purchase_order_id": np.arange(1, n_purchases + 1),
            "staff_id": rng.integers(1, sizes.staff + 1, n_purchases),
            "counterparty_id": purchase_counterparty,
            "item_code": pa.array(codes.view("<U7").ravel()),
            "item_quantity": quantity,
            "item_unit_price": _money(price_cents),
            "currency_id": purchase_currency,
            "agreed_delivery_date": _iso_dates_after(purchase_at, rng, 2, 7),
            "agreed_payment_date": _iso_dates_after(purchase_at, rng, 1, 7),
            "agreed_delivery_location_id": rng.integers(1, sizes.addresses + 1, n_purchases),
            "created_at": _timestamps(purchase_at),
            "last_updated": _timestamps(purchase_at),
        }
    )
    yield "purchase_order", purchase_order

    # One transaction per order, numbered in time order; the order's id by position.
    sales_id = np.zeros(n, dtype=np.int64)
    purchase_id = np.zeros(n, dtype=np.int64)
    sales_id[is_sale] = np.arange(1, n_sales + 1)
    purchase_id[~is_sale] = np.arange(1, n_purchases + 1)
    txn_at = stamps + rng.integers(0, 4, n).astype("timedelta64[ms]")
    transaction = pa.table(
        {
            "transaction_id": np.arange(1, n + 1),
            "transaction_type": np.where(is_sale, "SALE", "PURCHASE"),
            "sales_order_id": pa.array(sales_id, mask=~is_sale),
            "purchase_order_id": pa.array(purchase_id, mask=is_sale),
            "created_at": _timestamps(txn_at),
            "last_updated": _timestamps(txn_at),
        }
    )
    yield "transaction", transaction

    amount_cents = np.zeros(n, dtype=np.int64)
    amount_cents[is_sale] = units * unit_cents
    amount_cents[~is_sale] = quantity * price_cents
    counterparty = np.zeros(n, dtype=np.int64)
    counterparty[is_sale], counterparty[~is_sale] = sales_counterparty, purchase_counterparty
    currency = np.zeros(n, dtype=np.int64)
    currency[is_sale], currency[~is_sale] = sales_currency, purchase_currency
    refund = rng.random(n) < 0.1
    payment_type = np.where(is_sale, 1, 3) + refund
    paid = rng.random(n) < 0.6
    # Paid payments were updated when they flipped to paid: up to five days after creation,
    # and before the snapshot ends (spread, so no pile of rows shares the last timestamp).
    room_ms = (np.datetime64(SNAPSHOT_END, "ms") - txn_at).astype(np.int64)
    delay_ms = (rng.random(n) * np.minimum(room_ms, 5 * 86_400_000)).astype(np.int64)
    updated_at = np.where(paid, txn_at + delay_ms.astype("timedelta64[ms]"), txn_at)
    payment = pa.table(
        {
            "payment_id": np.arange(1, n + 1),
            "transaction_id": np.arange(1, n + 1),
            "counterparty_id": counterparty,
            "payment_amount": _money(amount_cents),
            "currency_id": currency,
            "payment_type_id": payment_type,
            "paid": paid,
            "payment_date": _iso_dates_after(txn_at, rng, 1, 7),
            "company_ac_number": rng.integers(10_000_000, 100_000_000, n),
            "counterparty_ac_number": rng.integers(10_000_000, 100_000_000, n),
            "created_at": _timestamps(txn_at),
            "last_updated": _timestamps(updated_at),
        }
    )
    yield "payment", payment


def _money(cents: np.ndarray) -> pa.Array:
    """Integer cents as decimal(10, 2): a decimal128 buffer holds the unscaled integers."""
    words = np.zeros((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)  # two's-complement high word
    return pa.Array.from_buffers(
        pa.decimal128(10, 2), len(cents), [None, pa.py_buffer(words.tobytes())]
    )
