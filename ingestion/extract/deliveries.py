"""Extract: delivery events that the logistics partner drops as JSON files -> the lake's
`deliveries` dataset.

The partner writes files into a bucket prefix (or a local folder), TOTES_DELIVERIES_URL:
`*.jsonl` (one event per line) or `*.json` (an array of events). Each run lists them with dlt's
filesystem helpers (a dlt resource with an incremental cursor) and reads only the files it has
not read before. A file is known by its path
and modification time, so one written again is read again (its events then arrive twice, and
staging keeps one of each). The cursor is the newest modification time read, and each run looks
LOOKBACK further back, remembering the files it read in that window: a file that turns up late
with an older time (an S3 multipart upload is stamped when it began, `cp -p` keeps the time)
is still read, once. One older than that when it turns up is not: write it again.

A file is taken whole or not at all. One that is not JSON, or whose events break the contract
(`DeliveryEvent`: a field missing, of the wrong type, or not known), goes to the table
`rejected_file` with its name, the reason and its bytes: nothing is dropped, and the other files
and sources go on. To send it again, the partner fixes it and writes it again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Annotated, Any, Literal

import dlt
import pyarrow as pa
from dlt.sources.filesystem import FileItemDict, glob_files
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from ingestion.extract import DELIVERIES_DATASET, DELIVERY_TABLE, REJECTED_TABLE
from ingestion.extract.totesys import extract_pipeline
from ingestion.lake.layout import LAKE_LOAD_COLUMN
from ingestion.lake.storage import bucket_url, filesystem

PIPELINE = "totes_deliveries"
LISTING = "delivery_files"  # the listing resource, whose state remembers the files read
LOOKBACK = timedelta(days=1)
FILE_GLOB = "**/*.json*"  # .json and .jsonl, in the prefix and below it
FILES_PER_PAGE = 100
EVENT_TYPES = ("dispatched", "out_for_delivery", "delivered", "failed_attempt", "returned")
REASON_CHARACTERS = 500  # a reason names the first problems; the file itself is kept whole


class DeliveryEvent(BaseModel):
    """The contract of one event, as the partner sends it. Strict: a number sent as a string,
    a time without its UTC offset, or a field this contract does not know rejects the file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    event_id: Annotated[str, Field(min_length=1, max_length=100)]
    sales_order_id: Annotated[int, Field(gt=0)]
    event_type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    # ISO 8601 text with an offset ("2026-12-07T09:30:00Z"), read as such despite strict mode
    event_at: Annotated[AwareDatetime, Field(strict=False)]
    units: Annotated[int, Field(ge=0)]
    carrier: Annotated[str, Field(min_length=1, max_length=100)]


# the lake's columns, as arrow types: they do not depend on what a file happens to hold
UTC_TIME = pa.timestamp("us", tz="UTC")
EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("sales_order_id", pa.int64(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("event_at", UTC_TIME, nullable=False),
        pa.field("units", pa.int64(), nullable=False),
        pa.field("carrier", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("file_modified_at", UTC_TIME, nullable=False),
        pa.field(LAKE_LOAD_COLUMN, pa.string(), nullable=False),
    ]
)
REJECTED_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("file_modified_at", UTC_TIME, nullable=False),
        pa.field("size_bytes", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("content", pa.binary(), nullable=False),
        pa.field(LAKE_LOAD_COLUMN, pa.string(), nullable=False),
    ]
)


class BrokenFile(ValueError):
    """A file's content breaks the contract; the message says where and how."""


def events_in(name: str, content: bytes) -> list[DeliveryEvent]:
    """The events of one file, or BrokenFile naming the first problems."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BrokenFile(f"not UTF-8 text (byte {error.start})") from None
    records: list[tuple[str, Any]] = []
    if name.endswith(".jsonl"):
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                records.append((f"line {number}", _parsed(line, f"line {number}: ")))
    else:
        document = _parsed(text, "")
        if not isinstance(document, list):
            raise BrokenFile(f"a .json file must hold an array of events, not {_kind(document)}")
        records = [(f"event {number}", item) for number, item in enumerate(document, start=1)]
    events, problems = [], []
    for where, record in records:
        if not isinstance(record, dict):
            problems.append(f"{where}: an event must be an object, not {_kind(record)}")
            continue
        try:
            events.append(DeliveryEvent.model_validate(record))
        except ValidationError as error:
            problems.extend(f"{where}: {_problem(detail)}" for detail in error.errors())
    if problems:
        raise BrokenFile(_shortened("; ".join(problems)))
    return events


def _parsed(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BrokenFile(f"{where}not JSON ({error.msg} at column {error.colno})") from None


def _problem(detail: Any) -> str:
    field = ".".join(str(part) for part in detail["loc"]) or "event"
    if detail["type"] == "missing":
        return f"{field} is missing"
    if detail["type"] == "extra_forbidden":
        return f"{field} is not a field of the contract"
    return f"{field} {detail['msg'][0].lower()}{detail['msg'][1:]}, got {detail['input']!r}"[:200]


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string"}.get(type(value), repr(value))


def _shortened(reason: str) -> str:
    if len(reason) <= REASON_CHARACTERS:
        return reason
    return reason[: REASON_CHARACTERS - 5].rsplit("; ", 1)[0] + "; ..."


def read_events(files: list[Any]) -> Iterator[Any]:
    """A page of listed files -> their events, or a `rejected_file` row per bad file. A file that
    cannot be read (the bucket is down) raises: nothing of this run is kept, the cursor stays."""
    load_id = dlt.current.load_package_state()["load_id"]
    events: list[dict[str, Any]] = []
    for file in files:
        content = file.read_bytes()
        name, modified = file["relative_path"], file["modification_date"]
        try:
            events.extend(
                {
                    **event.model_dump(),
                    "source_file": name,
                    "file_modified_at": modified,
                    LAKE_LOAD_COLUMN: load_id,
                }
                for event in events_in(name, content)
            )
        except BrokenFile as error:
            rejected = {
                "source_file": name,
                "file_modified_at": modified,
                "size_bytes": len(content),
                "reason": str(error),
                "content": content,
                LAKE_LOAD_COLUMN: load_id,
            }
            yield _as_table(REJECTED_TABLE, REJECTED_SCHEMA, [rejected])
    if events:
        yield _as_table(DELIVERY_TABLE, EVENT_SCHEMA, events)


def _as_table(table: str, schema: pa.Schema, rows: list[dict[str, Any]]) -> Any:
    return dlt.mark.with_table_name(pa.Table.from_pylist(rows, schema), table)


def deliveries_source(drop_url: str) -> Any:
    fs, _ = filesystem(drop_url)
    url = bucket_url(drop_url)

    def listing() -> Iterator[list[FileItemDict]]:
        page: list[FileItemDict] = []
        for item in glob_files(fs, url, FILE_GLOB):
            page.append(FileItemDict(item, fs))
            if len(page) == FILES_PER_PAGE:
                yield page
                page = []
        if page:
            yield page

    # a resource of this run's own: calling dlt's module-level `filesystem` resource binds its
    # arguments to that one object, which then kept every run's configuration alive (840
    # objects a run in a long-lived loop)
    files = dlt.resource(listing, name=LISTING)
    files.apply_hints(
        # [newest read - LOOKBACK, ...): with a lag dlt keeps no keys, so unseen_file does
        incremental=dlt.sources.incremental("modification_date", lag=LOOKBACK.total_seconds())
    )
    files.add_filter(unseen_file())
    return files | dlt.transformer(read_events, name=DELIVERY_TABLE)


def unseen_file() -> Any:
    """A dlt filter: drop files read before, and remember the ones inside the window.

    State: {"newest": the newest modification time read, "read": ["<path>@<time>", ...]} for
    the files no older than newest - LOOKBACK, the only ones a later run can list again."""

    read: set[str] | None = None  # the remembered keys, read from the state once a run

    def keep_unseen(file: Any) -> bool:
        nonlocal read
        state = dlt.current.resource_state(LISTING).setdefault("window", {})
        if read is None:
            read = set(state.get("read", []))
        modified: datetime = file["modification_date"]
        key = f"{file['relative_path']}@{modified.isoformat()}"
        if key in read:
            return False
        newest = max(modified, datetime.fromisoformat(state.get("newest", modified.isoformat())))
        start = newest - LOOKBACK
        read = {k for k in read if datetime.fromisoformat(k.rsplit("@")[-1]) >= start} | {key}
        state["read"] = sorted(read)
        state["newest"] = newest.isoformat()
        return True

    return keep_unseen


def extract_deliveries(drop_url: str, lake_url: str) -> dict[str, int]:
    """Read the files dropped since the last run into the lake. Returns rows per table (events
    and rejected files) when there were any. A failure to list or read raises, and leaves the
    cursor where it was."""
    with TemporaryDirectory(prefix="totes-dlt-") as work:
        pipeline = extract_pipeline(lake_url, Path(work), PIPELINE, DELIVERIES_DATASET)
        pipeline.run(deliveries_source(drop_url), loader_file_format="parquet")
        normalized = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    counts = normalized.row_counts if normalized else {}
    return {table: counts[table] for table in (DELIVERY_TABLE, REJECTED_TABLE) if counts.get(table)}
