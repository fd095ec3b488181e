"""The quarantine: source versions the warehouse holds back, and why.

dbt decides (see macros/quarantine.sql) and gathers them in the table quarantined_rows; the
marts take only versions that pass, and every build checks the held ones again. Each run then
mirrors that table into the lake, one parquet file per table:

    <lake>/quarantine/<table>/<table>.parquet     held and superseded versions, a reason each

The file disappears when nothing of that table is held any more.

Delivery files that broke their contract never reach dbt: the extract sets them aside whole, in
the lake's and the warehouse's `rejected_file` (see extract.deliveries); `rejected_files` lists
them here beside the held versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
from psycopg2 import sql

from ingestion.common.database import reading
from ingestion.export.processed import ParquetZone
from ingestion.extract import DELIVERY_TABLE, REJECTED_TABLE, TABLES

QUARANTINE_TABLE = "totesys_quarantine.quarantined_rows"
REJECTED_FILES = ("deliveries_raw", REJECTED_TABLE)
DELIVERY_EVENTS = ("deliveries_raw", DELIVERY_TABLE)
AREA = "quarantine"

_COLUMNS = ("source_table", "source_id", "last_updated", "status", "reason", "lake_load_id")


@dataclass(frozen=True)
class QuarantinedRow:
    source_table: str
    source_id: int
    last_updated: datetime
    status: str  # "held" (retried every build) or "superseded" (a newer valid version won)
    reason: str
    lake_load_id: str
    row_values: str  # the version as JSON


def quarantined_rows(warehouse_url: str) -> list[QuarantinedRow]:
    """Every version in quarantine as of the last dbt build, by table and id."""
    with reading(warehouse_url) as cursor:
        cursor.execute("select to_regclass(%s) is not null", (QUARANTINE_TABLE,))
        (exists,) = cursor.fetchone() or (False,)
        if not exists:
            return []
        cursor.execute(
            sql.SQL(
                "select {}, row_values::text from {} order by source_table, source_id, last_updated"
            ).format(
                sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
                sql.Identifier(*QUARANTINE_TABLE.split(".")),
            )
        )
        return [QuarantinedRow(*row) for row in cursor.fetchall()]


@dataclass(frozen=True)
class RejectedFile:
    source_file: str
    file_modified_at: datetime
    reason: str
    replaced: bool  # a later version of the same file was read without fault


def rejected_files(warehouse_url: str) -> list[RejectedFile]:
    """Every delivery file set aside, oldest first."""
    with reading(warehouse_url) as cursor:
        cursor.execute(
            "select to_regclass(%s) is not null, to_regclass(%s) is not null",
            (".".join(REJECTED_FILES), ".".join(DELIVERY_EVENTS)),
        )
        exists, events_exist = cursor.fetchone()
        if not exists:
            return []
        replaced = (
            sql.SQL(
                "exists (select 1 from {} as read where read.source_file = bad.source_file "
                "and read.file_modified_at > bad.file_modified_at)"
            ).format(sql.Identifier(*DELIVERY_EVENTS))
            if events_exist
            else sql.SQL("false")
        )
        cursor.execute(
            sql.SQL(
                "select distinct bad.source_file, bad.file_modified_at, bad.reason, {} "
                "from {} as bad order by bad.file_modified_at, bad.source_file"
            ).format(replaced, sql.Identifier(*REJECTED_FILES))
        )
        return [RejectedFile(*row) for row in cursor.fetchall()]


def mirror_to_lake(warehouse_url: str, lake_url: str) -> dict[str, int]:
    """Write the quarantine into the lake's quarantine area. Returns held versions per table."""
    rows = quarantined_rows(warehouse_url)
    zone = ParquetZone(f"{lake_url.rstrip('/')}/{AREA}")
    for table in TABLES:
        of_table = [row for row in rows if row.source_table == table]
        zone.replace_snapshot(table, _as_arrow(of_table) if of_table else None)
    held: dict[str, int] = {}
    for row in rows:
        if row.status == "held":
            held[row.source_table] = held.get(row.source_table, 0) + 1
    return held


def _as_arrow(rows: list[QuarantinedRow]) -> pa.Table:
    return pa.table(
        {
            "source_table": [row.source_table for row in rows],
            "source_id": pa.array([row.source_id for row in rows], pa.int64()),
            "last_updated": pa.array(
                [row.last_updated for row in rows], pa.timestamp("ms", tz="UTC")
            ),
            "status": [row.status for row in rows],
            "reason": [row.reason for row in rows],
            "lake_load_id": [row.lake_load_id for row in rows],
            "row_values": [row.row_values for row in rows],
        }
    )
