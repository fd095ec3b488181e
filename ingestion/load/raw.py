"""Load: completed lake loads not yet in the warehouse -> its raw schemas: the `totesys` dataset
to `totesys_raw`, `fx` to `fx_raw`, `deliveries` to `deliveries_raw`.

dlt hands the lake's arrow data to Postgres as parquet, which it loads through the ADBC driver
with a binary COPY. Its csv route formats every timezone-aware timestamp through the time zone
database, which made it 2.6 times slower (scale 100: 48 s against 18 s).

For each dataset, the newest lake load id already loaded is kept in its dlt pipeline's state,
which dlt commits to the warehouse in the same load as the rows. A crash before that commit
means the next run reads the same lake loads again; staging deduplicates, so nothing doubles
downstream.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import dlt
import pyarrow as pa
from sqlalchemy.engine import make_url

from ingestion.common.progress import progress_bars
from ingestion.extract import (
    DELIVERIES_DATASET,
    DELIVERY_TABLE,
    FX_DATASET,
    FX_TABLE,
    REJECTED_TABLE,
)
from ingestion.lake.layout import DATASET, LAKE_TABLES, Lake


@dataclass(frozen=True)
class RawDataset:
    """A lake dataset and the raw schema it is loaded into, by its own dlt pipeline."""

    lake_dataset: str
    tables: tuple[str, ...]
    raw_schema: str
    pipeline: str


TOTESYS = RawDataset(DATASET, LAKE_TABLES, "totesys_raw", "totes_load")
FX = RawDataset(FX_DATASET, (FX_TABLE,), "fx_raw", "totes_fx_load")
DELIVERIES = RawDataset(
    DELIVERIES_DATASET, (DELIVERY_TABLE, REJECTED_TABLE), "deliveries_raw", "totes_deliveries_load"
)
RAW_DATASETS = (TOTESYS, FX, DELIVERIES)
RAW_SCHEMA = TOTESYS.raw_schema

# dlt's ADBC job gathers a whole load file in memory before its COPY, and dlt's loader runs up
# to 20 jobs at once. Files of at most 200,000 rows, two jobs at a time (no slower on two
# cores), keep the load's memory flat: at scale 100 its peak went from 1.4 GiB to 0.5 GiB.
LOAD_SETTINGS = {"DATA_WRITER__FILE_MAX_ITEMS": "200000", "LOAD__WORKERS": "2"}
for _dataset in RAW_DATASETS:
    for _key, _value in LOAD_SETTINGS.items():
        os.environ.setdefault(f"{_dataset.pipeline.upper()}__{_key}", _value)


def load_pipeline(warehouse_url: str, pipelines_dir: Path, dataset: RawDataset) -> dlt.Pipeline:
    """dlt's pipeline for `dataset`, working in `pipelines_dir`: a private folder of this load's."""
    return dlt.pipeline(
        pipeline_name=dataset.pipeline,
        destination=dlt.destinations.postgres(
            credentials=_credentials(warehouse_url, pipelines_dir)
        ),
        dataset_name=dataset.raw_schema,
        pipelines_dir=str(pipelines_dir),
        progress=progress_bars(),
    )


def _credentials(url: str, private_dir: Path) -> str:
    """The warehouse URL as dlt can pass it on to libpq."""
    parsed = make_url(url)
    password = parsed.password or ""
    if not password:
        # dlt insists on a password; a trust-auth server (the embedded one) never reads this one
        return parsed.set(password="trust-auth").render_as_string(hide_password=False)  # noqa: S106
    if not any(character.isspace() for character in password):
        return url
    # dlt strips the password and renders it into a URI with its spaces as they are, which the
    # libpq of its ADBC driver refuses. Without a password in the URI, libpq reads it from a
    # password file (its `passfile` setting), here in the load's private folder, deleted with it.
    passfile = private_dir / "pgpass"
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    with os.fdopen(os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(f"*:*:*:*:{escaped}\n")
    query = {**parsed.query, "passfile": str(passfile)}
    return parsed.set(password="", query=query).render_as_string(hide_password=False)


@dlt.resource(name="lake_loads", write_disposition="append")
def lake_rows(lake: Lake, tables: tuple[str, ...]) -> Iterator[pa.Table]:
    """Every row of the lake loads newer than the last one loaded, routed to its own table.

    One resource, so one piece of state: it runs during extract, and dlt commits it with the rows.
    """
    state = dlt.current.resource_state()
    pending = lake.completed_loads(after=state.get("last_lake_load_id"))
    for table in tables:
        for rows in lake.read(table, pending):
            # every raw column nullable: a NULL the source should not have sent must reach
            # staging, which holds that version in quarantine, not fail the COPY
            yield dlt.mark.with_table_name(rows.cast(_nullable(rows.schema)), table)
    if pending:
        state["last_lake_load_id"] = pending[-1]


def _nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([field.with_nullable(True) for field in schema])


def load(lake_url: str, warehouse_url: str) -> dict[str, int]:
    """Load every raw dataset. Returns rows loaded per table (those with nothing new absent)."""
    return {
        table: rows
        for dataset in RAW_DATASETS
        for table, rows in load_dataset(lake_url, warehouse_url, dataset).items()
    }


def load_dataset(lake_url: str, warehouse_url: str, dataset: RawDataset) -> dict[str, int]:
    # dlt's working folder lives for one attempt: the watermark always comes from the warehouse
    with TemporaryDirectory(prefix="totes-dlt-") as work:
        pipeline = load_pipeline(warehouse_url, Path(work), dataset)
        lake = Lake(lake_url, dataset.lake_dataset)
        pipeline.run(lake_rows(lake, dataset.tables), loader_file_format="parquet")
        normalized = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    counts = normalized.row_counts if normalized else {}
    return {table: counts[table] for table in dataset.tables if counts.get(table)}
