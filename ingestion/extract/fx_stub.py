"""An offline stand-in for the Frankfurter API (https://frankfurter.dev), the FX source's default.

This machine has no internet, and the demo must run anywhere, so when `TOTES_FX_URL` is not set
a run serves this stub on loopback for its FX stage, much as it starts the embedded Postgres.
Its rates are synthetic (a smooth, repeatable curve per currency), published like the ECB's:
on working days only, so weekends and the TARGET holidays are gaps the warehouse must fill.
It answers the one request the FX source makes, a time series, in Frankfurter's shape:

    GET /<start>..[<end>]?base=GBP
    {"amount": 1.0, "base": "GBP", "start_date": "...", "end_date": "...",
     "rates": {"2024-01-02": {"EUR": 1.1523, "USD": 1.2701, ...}, ...}}

Tests set `today` to move time on, and `fail_with` to make it answer with an HTTP error.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# units of each currency per euro around which the synthetic rates move
EURO_RATES = {"EUR": 1.0, "GBP": 0.86, "USD": 1.09, "CHF": 0.95, "JPY": 158.0}
FIRST_DAY = date(1999, 1, 4)  # the first day the ECB published reference rates


def is_publishing_day(day: date) -> bool:
    """Monday to Friday, except the TARGET2 closing days that fall on fixed dates."""
    return day.weekday() < 5 and (day.month, day.day) not in {(1, 1), (5, 1), (12, 25), (12, 26)}


def euro_rate(currency: str, day: date) -> float:
    """Units of `currency` per euro on `day`: a few per cent either side of its level."""
    phase = sum(map(ord, currency))
    swing = 0.03 * math.sin(day.toordinal() / 41 + phase) + 0.01 * math.sin(day.toordinal() / 7)
    return EURO_RATES[currency] * (1 + swing)


def time_series(start: date, end: date, base: str) -> dict[str, object] | None:
    """The answer for [start, end]: the publishing days in it, or else (a range of holidays, or
    one not published yet) the last publishing day before it, never an empty series."""
    days = [start + timedelta(n) for n in range((end - start).days + 1)]
    published = [day for day in days if is_publishing_day(day)]
    if not published:
        last = start
        while not is_publishing_day(last):
            last -= timedelta(1)
        published = [last]
    if published[0] < FIRST_DAY:
        return None
    rates = {
        day.isoformat(): {
            currency: round(euro_rate(currency, day) / euro_rate(base, day), 5)
            for currency in EURO_RATES
            if currency != base
        }
        for day in published
    }
    return {
        "amount": 1.0,
        "base": base,
        "start_date": published[0].isoformat(),
        "end_date": published[-1].isoformat(),
        "rates": rates,
    }


class FrankfurterStub(ThreadingHTTPServer):
    """The stub server. `today` caps the series (None: the real date); `requests` records the
    paths asked for; `fail_with` makes every answer that HTTP status instead."""

    def __init__(self, today: date | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.today = today
        self.fail_with: int | None = None
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, path: str) -> tuple[int, object]:
        self.requests.append(path)
        if self.fail_with:
            return self.fail_with, {"message": "the stub was told to fail"}
        parts = urlsplit(path)
        base = parse_qs(parts.query).get("base", ["EUR"])[0]
        start_text, dots, end_text = parts.path.strip("/").partition("..")
        today = self.today or date.today()
        try:
            start = date.fromisoformat(start_text)
            end = min(date.fromisoformat(end_text), today) if end_text else today
        except ValueError:
            return 404, {"message": "not found"}
        series = time_series(start, end, base) if dots and base in EURO_RATES else None
        return (200, series) if series else (404, {"message": "not found"})


class _Handler(BaseHTTPRequestHandler):
    server: FrankfurterStub

    def do_GET(self) -> None:
        status, body = self.server.answer(self.path)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the run's own log says what the FX stage fetched."""


@contextmanager
def serving(stub: FrankfurterStub | None = None) -> Iterator[FrankfurterStub]:
    """The stub (a new one if not given), answering on a thread until the block ends."""
    stub = stub or FrankfurterStub()
    thread = threading.Thread(target=stub.serve_forever, name="fx-stub", daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.shutdown()
        stub.server_close()
        thread.join()
