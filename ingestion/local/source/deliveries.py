"""The delivery partner, simulated: JSON Lines files of delivery events for orders in the source,
written where the partner drops them (TOTES_DELIVERIES_URL), and on request bad files too.

Each order chosen gets: dispatched two days before its agreed delivery day, out for delivery on
the day, and delivered, mostly on time (sometimes after a failed attempt, or a day or two late).
Only orders already due are chosen, so no event is in the future. The same seed on the same
source writes the same files under the same names.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ingestion.common.database import reading
from ingestion.lake.storage import filesystem, write_atomically

CARRIERS = ("DPD", "DHL", "Evri", "Royal Mail", "UPS")
# what is wrong with each bad file, in turn
BAD_FILES = ("not JSON", "a field missing", "a number sent as text")


@dataclass(frozen=True)
class Dropped:
    files: list[str]
    events: int
    bad_files: list[str]


def drop_deliveries(
    source_url: str, drop_url: str, orders: int, seed: int, bad: int = 0
) -> Dropped:
    """Write one file of events for up to `orders` due sales orders, and `bad` bad files."""
    rng = random.Random(seed)  # noqa: S311 (demo data, not a secret)
    chosen = _due_orders(source_url, orders, rng)
    events = [event for order in chosen for event in _events(order, rng)]
    fs, root = filesystem(drop_url)
    written = []
    if events:
        name = f"deliveries-{seed}.jsonl"
        write_atomically(fs, f"{root}/{name}", _json_lines(events))
        written.append(name)
    bad_names = []
    for number in range(bad):
        kind = BAD_FILES[number % len(BAD_FILES)]
        name = f"deliveries-{seed}-bad-{number + 1}.jsonl"
        write_atomically(fs, f"{root}/{name}", _bad_file(kind, rng))
        bad_names.append(name)
    return Dropped(written, len(events), bad_names)


def _due_orders(source_url: str, orders: int, rng: random.Random) -> list[tuple[int, int, date]]:
    with reading(source_url) as cursor:
        cursor.execute(
            "select sales_order_id, units_sold, agreed_delivery_date::date from sales_order "
            "where agreed_delivery_date::date <= current_date order by sales_order_id"
        )
        due = cursor.fetchall()
    return sorted(rng.sample(due, min(orders, len(due))))


def _events(order: tuple[int, int, date], rng: random.Random) -> Iterator[dict[str, Any]]:
    sales_order_id, units, due = order
    carrier = rng.choice(CARRIERS)

    def event(kind: str, day: date, hour: int) -> dict[str, Any]:
        at = datetime.combine(day, time(hour, rng.randrange(60)), UTC)
        return {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "sales_order_id": sales_order_id,
            "event_type": kind,
            "event_at": at.isoformat().replace("+00:00", "Z"),
            "units": units,
            "carrier": carrier,
        }

    yield event("dispatched", due - timedelta(days=2), rng.randrange(8, 13))
    yield event("out_for_delivery", due, 7)
    late = rng.choices((0, 1, 2), weights=(80, 15, 5))[0]
    if rng.random() < 0.1:
        yield event("failed_attempt", due + timedelta(days=late), rng.randrange(9, 17))
        late += 1
    yield event("delivered", due + timedelta(days=late), rng.randrange(9, 18))


def _json_lines(events: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(event) + "\n" for event in events).encode()


def _bad_file(kind: str, rng: random.Random) -> bytes:
    event = next(_events((1, 10, date(2024, 1, 10)), rng))
    if kind == "not JSON":
        return _json_lines([event])[:-20] + b"\n"  # cut short, as by a failed upload
    if kind == "a field missing":
        del event["units"]
    else:
        event["sales_order_id"] = str(event["sales_order_id"])
    return _json_lines([event])
