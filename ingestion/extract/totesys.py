"""Extract: totesys -> landing zone, incrementally on `last_updated`, as parquet.

dlt keeps the cursor per table in its pipeline state, which it stores in the lake together with
the load, so progress never runs ahead of the data that is durably in the lake.

Each run reads again the LOOKBACK before the cursor: a long source transaction can commit rows
stamped earlier than rows a previous run already read. Versions (id, last_updated) already
extracted inside that window are remembered in the same state and dropped, so the lake gets
each version once, and the remembered set stays as small as the window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.sources.sql_database import sql_database

from ingestion.common.database import shared_engine
from ingestion.common.progress import progress_bars
from ingestion.extract import copy_backend
from ingestion.extract.source_keys import source_keys
from ingestion.lake.layout import (
    DATASET,
    LAKE_LOAD_COLUMN,
    LAKE_TABLES,
    LAYOUT,
    load_date_placeholder,
)
from ingestion.lake.storage import bucket_url

PIPELINE = "totes_extract"
LOOKBACK = timedelta(minutes=10)


def extract_pipeline(
    lake_url: str, pipelines_dir: Path, name: str = PIPELINE, dataset: str = DATASET
) -> dlt.Pipeline:
    """A dlt pipeline writing to the lake's `dataset` folder, in the lake's layout."""
    destination = dlt.destinations.filesystem(
        bucket_url=bucket_url(lake_url),
        layout=LAYOUT,
        extra_placeholders={"load_date": load_date_placeholder},
    )
    return dlt.pipeline(
        pipeline_name=name,
        destination=destination,
        dataset_name=dataset,
        pipelines_dir=str(pipelines_dir),
        progress=progress_bars(),
    )


def totesys_source(source_url: str, tables: list[str]) -> dlt.sources.DltSource:
    """The given business tables (never `_prisma_migrations`), each with its own cursor."""
    source = sql_database(
        credentials=shared_engine(source_url),  # dlt leaves an engine it is given open
        schema="public",
        table_names=tables,
        backend=copy_backend.BACKEND,
        # keeps numeric(10, 2) and varchar(3) instead of widening them
        reflection_level="full_with_precision",
        chunk_size=100_000,
    )
    for name, resource in source.resources.items():
        resource.apply_hints(
            # [last - LOOKBACK, ...): dlt drops its own boundary dedup when a lag is set, and
            # keep_unseen_versions below does it for the whole window instead.
            incremental=dlt.sources.incremental("last_updated", lag=LOOKBACK.total_seconds()),
            primary_key=f"{name}_id",
            write_disposition="append",
            # naive in the source, UTC by the spec: the lake says so (see as_utc_milliseconds)
            columns={
                column: {"data_type": "timestamp", "timezone": True, "precision": 3}
                for column in ("created_at", "last_updated")
            },
        )
        resource.add_map(keep_unseen_versions(name, f"{name}_id"))
        # a window with nothing new must not leave an empty file in the lake
        resource.add_filter(lambda rows: rows.num_rows > 0)
        resource.add_map(as_utc_milliseconds)
    return source


def as_utc_milliseconds(rows: pa.Table) -> pa.Table:
    """A dlt map step: source timestamps are naive UTC with millisecond precision, so the lake
    says so, as timestamp(ms, UTC) (the safe cast fails rather than drop a finer digit)."""
    utc_ms = pa.timestamp("ms", tz="UTC")
    schema = pa.schema(
        [f.with_type(utc_ms) if pa.types.is_timestamp(f.type) else f for f in rows.schema]
    )
    return rows.cast(schema)


def tag_with_load_id(rows: pa.Table) -> pa.Table:
    """A dlt map step: each row names the lake load that wrote it, which survives compaction."""
    load_id = dlt.current.load_package_state()["load_id"]
    return rows.append_column(LAKE_LOAD_COLUMN, pa.array([load_id] * rows.num_rows, pa.string()))


def keep_unseen_versions(table: str, id_column: str) -> Callable[[pa.Table], pa.Table]:
    """A dlt map step: drop versions already extracted, remember the ones inside the window.

    State: {"last_updated": newest seen, "versions": ["<id>@<last_updated>", ...]} for the
    versions no older than newest - LOOKBACK, i.e. the only ones a later run can read again.
    """
    extracted_before: set[str] | None = None  # the remembered set as this run found it

    def keep_unseen(rows: pa.Table) -> pa.Table:
        nonlocal extracted_before
        state = dlt.current.resource_state(table).setdefault("window", {})
        if extracted_before is None:
            extracted_before = set(state.get("versions", []))
        if extracted_before:  # dlt delivers only rows inside the old window or newer
            unseen = [key not in extracted_before for key in _version_keys(rows, id_column)]
            rows = rows.filter(pa.array(unseen, pa.bool_()))
        if rows.num_rows == 0:
            return rows
        stamps = rows.column("last_updated")
        newest = max(filter(None, [pc.max(stamps).as_py(), _parse(state.get("last_updated"))]))
        window_start = newest - LOOKBACK
        recent = rows.filter(pc.greater_equal(stamps, pa.scalar(window_start, stamps.type)))
        remembered = set(state.get("versions", [])) | set(_version_keys(recent, id_column))
        state["versions"] = sorted(k for k in remembered if _parse(k.split("@")[1]) >= window_start)
        state["last_updated"] = newest.isoformat()
        return rows

    return keep_unseen


def _version_keys(rows: pa.Table, id_column: str) -> list[str]:
    ids = rows.column(id_column).to_pylist()
    stamps = rows.column("last_updated").to_pylist()
    return [f"{i}@{t.isoformat()}" for i, t in zip(ids, stamps, strict=True)]


def _parse(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp) if stamp else None


def extract(
    source_url: str, lake_url: str, tables: list[str], key_check_every: int
) -> dict[str, int]:
    """Extract `tables` (a table left out keeps its cursor), and every `key_check_every` runs
    their key snapshot. Returns new rows per table (tables with no change are absent)."""
    if not tables:  # sql_database would take an empty list to mean every table
        return {}
    source = totesys_source(source_url, tables)
    # one source, so the snapshot lands in the same lake load as the rows it describes
    source.resources.add(source_keys(source_url, tables, key_check_every))
    for resource in source.resources.values():
        resource.add_map(tag_with_load_id)
    # dlt's working folder lives for one attempt, so the cursors always come from the lake: a
    # retried extract starts clean instead of finishing a half-uploaded package
    with TemporaryDirectory(prefix="totes-dlt-") as work:
        pipeline = extract_pipeline(lake_url, Path(work))
        pipeline.run(source, loader_file_format="parquet")
        normalized = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    counts = normalized.row_counts if normalized else {}
    return {table: counts[table] for table in LAKE_TABLES if counts.get(table)}
