"""FX rates, source to lake: dlt's REST API source against the Frankfurter stub over real HTTP.

The stub's `today` moves time on; `fail_with` and a subclass make it misbehave. What the
warehouse makes of the rates (dim_fx_rate, revenue in GBP) is tested in test_star_schema, on its
pipeline-built warehouse.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from ingestion.errors import FxSourceError
from ingestion.extract import FX_DATASET, FX_TABLE
from ingestion.extract.fx import FIRST_RATE_DAY, extract_fx, newest_publishable_day
from ingestion.extract.fx_stub import EURO_RATES, FrankfurterStub, is_publishing_day, serving

FOREIGN = len(EURO_RATES) - 1  # the stub's currencies other than the pound


def publishing_days(first: date, last: date) -> list[date]:
    days = (first + timedelta(n) for n in range((last - first).days + 1))
    return [day for day in days if is_publishing_day(day)]


def lake_rates(lake: Path) -> list[tuple[date, str, float]]:
    table = ds.dataset(lake / FX_DATASET / FX_TABLE, format="parquet").to_table()
    return sorted(
        zip(
            table["rate_date"].to_pylist(),
            table["currency_code"].to_pylist(),
            table["units_per_gbp"].to_pylist(),
            strict=True,
        )
    )


def lake_files(lake: Path) -> list[Path]:
    return sorted((lake / FX_DATASET / FX_TABLE).rglob("*.parquet"))


def test_a_first_fetch_lands_every_published_rate_once(tmp_path: Path) -> None:
    today = date(2024, 1, 10)  # a Wednesday
    with serving(FrankfurterStub(today=today)) as stub:
        rows = extract_fx(stub.url, str(tmp_path))
    assert stub.requests == [f"/{FIRST_RATE_DAY}..?base=GBP"]
    days = publishing_days(FIRST_RATE_DAY, today)
    assert rows == {FX_TABLE: len(days) * FOREIGN}
    rates = lake_rates(tmp_path)
    assert len(rates) == len({(day, currency) for day, currency, _ in rates}) == rows[FX_TABLE]
    assert {day for day, _, _ in rates} == set(days)  # no weekend, no 25 December
    assert date(2023, 12, 25) not in days and date(2023, 12, 22) in days
    assert all(rate > 0 for _, _, rate in rates)


def test_the_next_fetch_starts_at_the_cursor_and_brings_only_new_days(tmp_path: Path) -> None:
    with serving(FrankfurterStub(today=date(2024, 1, 10))) as stub:
        first = extract_fx(stub.url, str(tmp_path))
        again = extract_fx(stub.url, str(tmp_path))  # the same day: nothing new
        stub.today = date(2024, 1, 15)  # Thursday, Friday and Monday are new
        later = extract_fx(stub.url, str(tmp_path))
    # each asks again from the newest day it has, so a day revised later is not missed
    assert stub.requests[1:] == ["/2024-01-10..?base=GBP"] * 2
    assert again == {}
    assert later == {FX_TABLE: 3 * FOREIGN}
    rates = lake_rates(tmp_path)
    assert len(rates) == first[FX_TABLE] + later[FX_TABLE]
    assert len({(day, currency) for day, currency, _ in rates}) == len(rates)


@pytest.mark.parametrize("failure", ["refused", "503"])
def test_a_failing_api_is_a_clear_error_and_the_next_fetch_loses_nothing(
    tmp_path: Path, failure: str
) -> None:
    with serving(FrankfurterStub(today=date(2024, 1, 10))) as stub:
        extract_fx(stub.url, str(tmp_path))
        before = lake_files(tmp_path)
        stub.today = date(2024, 1, 12)
        if failure == "refused":
            with serving() as gone:
                url = gone.url  # its port, once closed, refuses connections
            expected = "Connection refused"
        else:
            stub.fail_with, url, expected = 503, stub.url, "503 Server Error"
        with pytest.raises(FxSourceError, match=expected) as raised:
            extract_fx(url, str(tmp_path))
        assert str(raised.value).startswith(f"fetching FX rates from {url} into the lake failed")
        assert lake_files(tmp_path) == before
        stub.fail_with = None
        caught_up = extract_fx(stub.url, str(tmp_path))
    assert stub.requests[-1] == "/2024-01-10..?base=GBP"  # the cursor did not move
    assert caught_up == {FX_TABLE: 2 * FOREIGN}  # Thursday and Friday


class MisbehavingStub(FrankfurterStub):
    """Answers every request with the body it was given."""

    body: object = None

    def answer(self, path: str) -> tuple[int, object]:  # type: ignore[override]
        self.requests.append(path)
        return 200, self.body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"base": "EUR", "rates": {"2024-01-02": {"USD": 1.1}}}, "did not answer with GBP rates"),
        ({"base": "GBP", "rates": {"2024-01-02": {"USD": "1.1"}}}, "sent '1.1' as the USD rate"),
        ({"base": "GBP", "message": "not found"}, "did not answer with GBP rates"),
        (["2024-01-02", 1.1], "did not answer with GBP rates"),
    ],
    ids=["another base", "a rate as text", "no rates", "a list"],
)
def test_an_answer_that_is_not_a_rate_series_is_refused(
    tmp_path: Path, body: object, expected: str
) -> None:
    stub = MisbehavingStub()
    stub.body = body
    with serving(stub), pytest.raises(FxSourceError, match=expected):
        extract_fx(stub.url, str(tmp_path))
    assert not (tmp_path / FX_DATASET / FX_TABLE).exists()


@pytest.mark.parametrize(
    ("now", "newest"),
    [
        ("2024-01-10T15:59:00+00:00", "2024-01-09"),  # Wednesday, before publication
        ("2024-01-10T16:00:00+00:00", "2024-01-10"),  # Wednesday, published
        ("2024-01-15T09:00:00+00:00", "2024-01-12"),  # Monday morning: Friday's
        ("2024-01-13T18:00:00+00:00", "2024-01-12"),  # Saturday
        ("2024-01-14T18:00:00+01:00", "2024-01-12"),  # Sunday, in another zone
    ],
)
def test_the_api_is_asked_only_when_a_newer_day_may_be_out(now: str, newest: str) -> None:
    assert newest_publishable_day(datetime.fromisoformat(now)) == date.fromisoformat(newest)
