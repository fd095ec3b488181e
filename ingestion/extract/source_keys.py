"""Key snapshots: which ids each source table holds, so the warehouse can see hard deletes.

The `last_updated` cursor never sees a deleted row. So every `every` runs the extract also
writes, as lake table `source_keys`, each table's ids as ranges of consecutive ids (serial ids
make that a handful of rows, not one per id). dbt's `deleted_rows` then marks an id deleted when
a snapshot lacks it although an earlier lake load held it.

The run counter is this resource's dlt state, committed to the lake with the snapshot itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
import pyarrow as pa
from psycopg2 import sql

from ingestion.common.database import reading

KEYS_TABLE = "source_keys"
KEY_RANGES = pa.schema(
    [("source_table", pa.string()), ("first_id", pa.int64()), ("last_id", pa.int64())]
)

# Gaps and islands: consecutive ids share `id - row_number()`.
_RANGES = """
    select min(id), max(id)
    from (select {id} as id, {id} - row_number() over (order by {id}) as island from {table}) as ids
    group by island
    order by 1
"""


def key_ranges(cursor: Any, table: str) -> pa.Table:
    """The ids of `table` as [first_id, last_id] ranges. An empty table gives one null range, so
    a snapshot always says which tables it covered."""
    query = sql.SQL(_RANGES).format(
        id=sql.Identifier(f"{table}_id"), table=sql.Identifier("public", table)
    )
    cursor.execute(query)
    ranges = cursor.fetchall() or [(None, None)]
    return pa.table(
        {
            "source_table": [table] * len(ranges),
            "first_id": [first for first, _ in ranges],
            "last_id": [last for _, last in ranges],
        },
        schema=KEY_RANGES,
    )


def source_keys(source_url: str, tables: list[str], every: int) -> dlt.sources.DltResource:
    """A dlt resource that yields the key snapshot of `tables` on every `every`-th run."""

    @dlt.resource(name=KEYS_TABLE, write_disposition="append")
    def snapshot() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        runs = state.get("runs_since_check", 0) + 1
        if runs < every:
            state["runs_since_check"] = runs
            return
        with reading(source_url) as cursor:
            for table in tables:
                yield key_ranges(cursor, table)
        state["runs_since_check"] = 0

    return snapshot
