"""A dlt `sql_database` backend that reads each table with `COPY (query) TO STDOUT`.

dlt's own backends fetch rows through SQLAlchemy and build arrow from Python tuples: about 110,000
rows/s here, most of an initial extract. This one keeps everything else of `sql_database`
(reflection, column hints, the incremental cursor and its WHERE clause) and runs the query dlt
built as a COPY streamed into pyarrow's CSV reader (`ingestion.common.copy_out`). Its tables
have the types dlt's `pyarrow` backend gives, so the lake's files do not change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from dlt.common.configuration.container import Container
from dlt.common.destination import DestinationCapabilitiesContext
from dlt.common.libs.pyarrow import columns_to_arrow
from dlt.sources.sql_database import register_table_loader_backend
from dlt.sources.sql_database.helpers import BaseTableLoader
from psycopg2 import sql
from sqlalchemy.dialects import postgresql

from ingestion.common.copy_out import copy_out

BACKEND = "postgres_copy"


class CopyTableLoader(BaseTableLoader):
    """Yields the table's rows (as dlt's query selects them) in arrow tables."""

    def load_rows(self, backend_kwargs: dict[str, Any] | None = None) -> Iterator[pa.Table]:
        select = self.make_query()
        # literal values: COPY takes no parameters. The plain dialect leaves '%' alone.
        query = str(
            select.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        )
        caps = Container().get(DestinationCapabilitiesContext)
        typed = columns_to_arrow(
            self.columns, caps or DestinationCapabilitiesContext.generic_capabilities(), "UTC"
        )
        schema = pa.schema(typed.field(column.name) for column in select.selected_columns)
        # a naive source timestamp comes as naive text: read it so, then label it (UTC, the
        # zone dlt's backends assume for naive values)
        as_read = pa.schema(
            field.with_type(pa.timestamp(field.type.unit))
            if pa.types.is_timestamp(field.type) and not self._aware(field.name)
            else field
            for field in schema
        )
        connection = self.engine.raw_connection()
        try:
            for rows in copy_out(connection.driver_connection, sql.SQL(query), as_read):
                yield rows.cast(schema)
        finally:
            connection.close()

    def _aware(self, column: str) -> bool:
        return bool(getattr(self.table.c[column].type, "timezone", False))


register_table_loader_backend(BACKEND, CopyTableLoader)
