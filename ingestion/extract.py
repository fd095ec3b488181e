"""Extract: totesys -> landing zone, incrementally on `last_updated`, as parquet.

dlt keeps the cursor per table in its pipeline state, which it stores in the lake together with
the load, so progress never runs ahead of the data that is durably in the lake.
"""

from __future__ import annotations

from pathlib import Path

import dlt
from dlt.sources.sql_database import sql_database

from ingestion.config import sqlalchemy_url
from ingestion.lake import DATASET, LAYOUT, bucket_url, load_date_placeholder
from ingestion.source.generate import TABLES

PIPELINE = "totes_extract"


def extract_pipeline(lake_url: str, pipelines_dir: Path) -> dlt.Pipeline:
    destination = dlt.destinations.filesystem(
        bucket_url=bucket_url(lake_url),
        layout=LAYOUT,
        extra_placeholders={"load_date": load_date_placeholder},
    )
    return dlt.pipeline(
        pipeline_name=PIPELINE,
        destination=destination,
        dataset_name=DATASET,
        pipelines_dir=str(pipelines_dir),
    )


def totesys_source(source_url: str) -> dlt.sources.DltSource:
    """The 11 business tables (never `_prisma_migrations`), each with its own cursor."""
    source = sql_database(
        credentials=sqlalchemy_url(source_url),
        schema="public",
        table_names=list(TABLES),
        backend="pyarrow",
        # keeps numeric(10, 2) and varchar(3) instead of widening them
        reflection_level="full_with_precision",
        chunk_size=100_000,
    )
    for name, resource in source.resources.items():
        resource.apply_hints(
            # Closed range [last, ...) plus dedup of rows at the boundary: `last_updated` is not
            # unique, so rows sharing the newest timestamp may arrive in two runs.
            incremental=dlt.sources.incremental("last_updated"),
            primary_key=f"{name}_id",
            write_disposition="append",
        )
    return source


def extract(source_url: str, lake_url: str, pipelines_dir: Path) -> dict[str, int]:
    """Run one extract. Returns new rows per table (tables with no change are absent)."""
    pipeline = extract_pipeline(lake_url, pipelines_dir)
    pipeline.run(totesys_source(source_url), loader_file_format="parquet")
    counts = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace else {}
    return {table: counts[table] for table in TABLES if counts.get(table)}
