"""`totes source churn`: the kinds of change totesys sees, stamped with the current time.

New orders arrive with their transaction and payment (all with one timestamp), unpaid payments
flip to paid, and reference rows (addresses, departments, designs, ...) get edited. Every change
sets `last_updated`, as the real application does.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg2
from faker import Faker
from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class ChurnResult:
    sales_orders: int = 0
    purchase_orders: int = 0
    payments_paid: int = 0
    updates: int = 0

    @property
    def changed_rows(self) -> int:
        """New row versions in the source: an order adds three (order, transaction, payment)."""
        orders = self.sales_orders + self.purchase_orders
        return 3 * orders + self.payments_paid + self.updates


def now_utc() -> datetime:
    """The current UTC time as totesys stores it: naive, millisecond precision."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def churn(
    url: str, orders: int, payments_paid: int, updates: int, seed: int, at: datetime | None = None
) -> ChurnResult:
    """Apply the changes in one source transaction, stamped `at` (default: now), and return
    what changed. The same seed and `at` on the same data make the same changes."""
    rng = random.Random(seed)  # noqa: S311 (repeatable demo data, not a secret)
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            at = at or now_utc()
            ids = _Ids(cur, rng)
            # Before the new orders, so every change below makes exactly one new version.
            paid = _pay(cur, rng, payments_paid, at)
            edited = _edit(cur, rng, ids, fake, updates, at)
            sales = purchases = 0
            for i in range(orders):
                # Orders in a burst are a few milliseconds apart.
                stamp = at + timedelta(milliseconds=i)
                if rng.random() < 0.7:
                    _new_sales_order(cur, rng, ids, stamp)
                    sales += 1
                else:
                    _new_purchase_order(cur, rng, ids, stamp)
                    purchases += 1
        return ChurnResult(sales, purchases, paid, edited)
    finally:
        conn.close()


class _Ids:
    """The ids of the tables that new rows point to, read once per churn."""

    def __init__(self, cur: Cursor, rng: random.Random) -> None:
        self._rng = rng
        self._ids: dict[str, list[int]] = {}
        for table in ("address", "counterparty", "department", "design", "staff"):
            cur.execute(
                sql.SQL("select {} from {} order by 1").format(
                    sql.Identifier(f"{table}_id"), sql.Identifier(table)
                )
            )
            self._ids[table] = [row[0] for row in cur.fetchall()]

    def pick(self, table: str) -> int:
        return self._rng.choice(self._ids[table])

    def all(self, table: str) -> list[int]:
        return self._ids[table]


def _dates(rng: random.Random, at: datetime) -> tuple[str, str]:
    delivery = (at + timedelta(days=rng.randint(2, 7))).date().isoformat()
    payment = (at + timedelta(days=rng.randint(1, 7))).date().isoformat()
    return delivery, payment


def _new_sales_order(cur: Cursor, rng: random.Random, ids: _Ids, at: datetime) -> None:
    counterparty, currency = ids.pick("counterparty"), rng.randint(1, 3)
    units, price = rng.randint(1_001, 99_973), rng.randint(200, 400) / 100
    delivery, payment_date = _dates(rng, at)
    cur.execute(
        "insert into sales_order (design_id, staff_id, counterparty_id, units_sold, unit_price, "
        "currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id, "
        "created_at, last_updated) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "returning sales_order_id",
        (
            ids.pick("design"),
            ids.pick("staff"),
            counterparty,
            units,
            price,
            currency,
            delivery,
            payment_date,
            ids.pick("address"),
            at,
            at,
        ),
    )
    (order_id,) = cur.fetchone()
    _transaction_and_payment(cur, rng, at, "SALE", order_id, counterparty, currency, units * price)


def _new_purchase_order(cur: Cursor, rng: random.Random, ids: _Ids, at: datetime) -> None:
    counterparty, currency = ids.pick("counterparty"), rng.randint(1, 3)
    quantity, price = rng.randint(1, 1_000), rng.randint(100, 99_999) / 100
    delivery, payment_date = _dates(rng, at)
    cur.execute(
        "insert into purchase_order (staff_id, counterparty_id, item_code, item_quantity, "
        "item_unit_price, currency_id, agreed_delivery_date, agreed_payment_date, "
        "agreed_delivery_location_id, created_at, last_updated) "
        "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning purchase_order_id",
        (
            ids.pick("staff"),
            counterparty,
            "".join(rng.choices(ALPHABET, k=7)),
            quantity,
            price,
            currency,
            delivery,
            payment_date,
            ids.pick("address"),
            at,
            at,
        ),
    )
    (order_id,) = cur.fetchone()
    _transaction_and_payment(
        cur, rng, at, "PURCHASE", order_id, counterparty, currency, quantity * price
    )


def _transaction_and_payment(
    cur: Cursor,
    rng: random.Random,
    at: datetime,
    kind: str,
    order_id: int,
    counterparty: int,
    currency: int,
    amount: float,
) -> None:
    sales_order_id, purchase_order_id = (order_id, None) if kind == "SALE" else (None, order_id)
    cur.execute(
        "insert into transaction (transaction_type, sales_order_id, purchase_order_id, "
        "created_at, last_updated) values (%s, %s, %s, %s, %s) returning transaction_id",
        (kind, sales_order_id, purchase_order_id, at, at),
    )
    (transaction_id,) = cur.fetchone()
    payment_type = (1 if kind == "SALE" else 3) + (rng.random() < 0.1)
    cur.execute(
        "insert into payment (transaction_id, counterparty_id, payment_amount, currency_id, "
        "payment_type_id, paid, payment_date, company_ac_number, counterparty_ac_number, "
        "created_at, last_updated) values (%s, %s, round(%s::numeric, 2), %s, %s, false, %s, "
        "%s, %s, %s, %s)",
        (
            transaction_id,
            counterparty,
            amount,
            currency,
            payment_type,
            (at + timedelta(days=rng.randint(1, 7))).date().isoformat(),
            rng.randint(10_000_000, 99_999_999),
            rng.randint(10_000_000, 99_999_999),
            at,
            at,
        ),
    )


def _pay(cur: Cursor, rng: random.Random, count: int, at: datetime) -> int:
    """Flip up to `count` unpaid payments to paid."""
    cur.execute("select payment_id from payment where not paid order by payment_id")
    unpaid = [row[0] for row in cur.fetchall()]
    chosen = rng.sample(unpaid, min(count, len(unpaid)))
    cur.execute(
        "update payment set paid = true, last_updated = %s where payment_id = any(%s)",
        (at, chosen),
    )
    return len(chosen)


def _edit(cur: Cursor, rng: random.Random, ids: _Ids, fake: Faker, count: int, at: datetime) -> int:
    """Edit `count` distinct reference rows: the changes that must flow into the dimensions."""
    rows = [(table, row_id) for table in _EDITABLE for row_id in ids.all(table)]
    for table, row_id in rng.sample(rows, min(count, len(rows))):
        column, value = rng.choice(_EDITABLE[table])
        cur.execute(
            sql.SQL("update {} set {} = %s, last_updated = %s where {} = %s").format(
                sql.Identifier(table), sql.Identifier(column), sql.Identifier(f"{table}_id")
            ),
            (value(fake), at, row_id),
        )
    return min(count, len(rows))


# table -> (column, new value): constants only, so the f-string SQL above is safe.
_EDITABLE: dict[str, tuple[tuple[str, Callable[[Faker], str]], ...]] = {
    "address": (
        ("phone", lambda f: f.phone_number()),
        ("address_line_1", lambda f: f.street_address()),
    ),
    "department": (("manager", lambda f: f.name()),),
    "design": (("file_location", lambda f: f"/{f.word()}/{f.word()}"),),
    "counterparty": (("commercial_contact", lambda f: f.name()),),
    "staff": (("email_address", lambda f: f"{f.user_name()}@terrifictotes.com"),),
}
