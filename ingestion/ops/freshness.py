"""How far behind the source the warehouse is.

Lag of a table: now minus the start of the newest run that brought it fully up to date (the
run ledger's `caught_up`). Every change committed before that start is in the warehouse, so
this bounds the age of any change still missing, and a quiet source does not look stale. The
SLA is 30 minutes (the brief's limit).

The newest fact age (now minus the newest `last_updated` in the facts) is also measured: it
grows in quiet hours too, so it is a metric, not an alert.
"""

from __future__ import annotations

from datetime import datetime

from psycopg2 import sql

from ingestion.database import reading
from ingestion.load import RAW_SCHEMA

SLA_MINUTES = 30
FACTS = ("fact_sales_order", "fact_purchase_orders", "fact_payment")


def lag_seconds(caught_up_since: dict[str, datetime], now: datetime) -> dict[str, float]:
    return {table: (now - since).total_seconds() for table, since in caught_up_since.items()}


def breached(lags: dict[str, float]) -> dict[str, float]:
    return {table: lag for table, lag in lags.items() if lag > SLA_MINUTES * 60}


def newest_versions(warehouse_url: str, tables: list[str]) -> dict[str, datetime | None]:
    """The newest `last_updated` of each table in the raw schema: its watermark."""
    newest: dict[str, datetime | None] = {}
    with reading(warehouse_url) as cursor:
        for table in tables:
            cursor.execute("select to_regclass(%s) is not null", (f"{RAW_SCHEMA}.{table}",))
            if not cursor.fetchone()[0]:
                continue
            query = sql.SQL("select max(last_updated) from {}").format(
                sql.Identifier(RAW_SCHEMA, table)
            )
            cursor.execute(query)
            newest[table] = cursor.fetchone()[0]
    return newest


def newest_fact_version(warehouse_url: str) -> datetime | None:
    with reading(warehouse_url) as cursor:
        newest = []
        for fact in FACTS:
            cursor.execute("select to_regclass(%s) is not null", (fact,))
            if cursor.fetchone()[0]:
                query = sql.SQL("select max(last_updated_date + last_updated_time) from {}")
                cursor.execute(query.format(sql.Identifier(fact)))
                newest.append(cursor.fetchone()[0])
    return max(filter(None, newest), default=None)
