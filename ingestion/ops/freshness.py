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

from ingestion.common.database import reading
from ingestion.load.raw import RAW_SCHEMA

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
            # the expression dbt indexes (macros/build_window.sql): an index lookup, not a scan
            query = sql.SQL(
                "select max((last_updated at time zone 'UTC')::timestamp(3)) at time zone 'UTC' "
                "from {}"
            ).format(sql.Identifier(RAW_SCHEMA, table))
            cursor.execute(query)
            newest[table] = cursor.fetchone()[0]
    return newest


def newest_fact_version(warehouse_url: str) -> datetime | None:
    with reading(warehouse_url) as cursor:
        newest = []
        for fact in FACTS:
            cursor.execute("select to_regclass(%s) is not null", (fact,))
            if cursor.fetchone()[0]:
                # the facts' (last_updated_date, last_updated_time) index answers this
                query = sql.SQL(
                    "select last_updated_date + last_updated_time from {} "
                    "order by last_updated_date desc, last_updated_time desc limit 1"
                )
                cursor.execute(query.format(sql.Identifier(fact)))
                newest.append(row[0] if (row := cursor.fetchone()) else None)
    return max(filter(None, newest), default=None)
