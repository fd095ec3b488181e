"""Continuous mode under change: `totes run --every N` in a child process while source changes
are committed at random moments, each timed until its new version is in `fact_payment` and in
the processed zone. Also collects what the loop process held after each run (memory, files).

A change updates one payment's amount and `last_updated`, as the application would. The moments
are random and independent of the loop, so a change meets the loop at any phase: just after a
run's extract read the source (the worst case), or just before it does.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg2
import pyarrow.parquet as pq

from ingestion.lake.storage import filesystem

POLL_SECONDS = 0.25
TIMEOUT_SECONDS = 180  # a change not seen by then is lost, and the measurement fails


@dataclass
class Change:
    payment_id: int
    last_updated: datetime  # the version the source now holds
    committed: float  # time.monotonic() once committed
    to_warehouse: float | None = None  # seconds until it was in fact_payment
    to_processed: float | None = None  # ... and in the processed zone's fact_payment


@dataclass
class LoopResult:
    changes: list[Change]
    runs: list[dict[str, Any]]  # each run's `done` log event (seconds, rss_mib, open_files ...)
    exit_code: int
    log: str
    stopped: bool  # the loop said it stopped on SIGTERM
    failed_runs: int = 0
    late_runs: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def seconds(self, where: str) -> list[float]:
        return [getattr(c, f"to_{where}") for c in self.changes]


def run_loop(
    env: dict[str, str],
    cwd: Path,
    every: int,
    *,
    seconds: float | None = None,
    runs: int | None = None,
    mean_gap: float = 10.0,
    seed: int = 0,
) -> LoopResult:
    """Run `totes run --every <every>` (its settings in `env`) until `seconds` have passed or
    `runs` runs have finished, committing a change every `mean_gap` seconds on average
    (0: none); then wait for every change to arrive, stop the loop with SIGTERM and return
    what happened. Raises if a change never arrives."""
    rng = random.Random(seed)  # noqa: S311 (when changes happen, not a secret)
    databases = _Databases(env["TOTES_SOURCE_URL"], env["TOTES_WAREHOUSE_URL"], rng)
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "loop.log"
        with log_path.open("a") as output:  # appending: reading it moves no write position
            loop = subprocess.Popen(  # noqa: S603 (this environment's totes, no shell)
                [str(Path(sys.executable).parent / "totes"), "run", "--every", str(every)],
                env={**env, "TOTES_LOG_FORMAT": "json"},
                cwd=cwd,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        watch = _Watch(loop, log_path, databases, _ProcessedZone(env["TOTES_PROCESSED_URL"]))
        try:
            watch.change_until(rng, mean_gap, seconds, runs)
            watch.until_every_change_arrived()
            loop.send_signal(signal.SIGTERM)
            exit_code = loop.wait(timeout=TIMEOUT_SECONDS)
        finally:
            if loop.poll() is None:
                loop.kill()
                loop.wait()
            databases.close()
        log = log_path.read_text()
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return LoopResult(
        changes=watch.changes,
        runs=[e for e in events if e.get("message", "").startswith("done in ")],
        exit_code=exit_code,
        log=log,
        stopped=any(e.get("message", "").startswith("stopped on SIGTERM") for e in events),
        failed_runs=sum(e.get("level") == "error" for e in events),
        late_runs=sum("late_seconds" in e for e in events),
        events=events,
    )


@dataclass
class _Watch:
    """The loop running, and the changes committed to its source."""

    loop: subprocess.Popen[bytes]
    log_path: Path
    databases: _Databases
    processed: _ProcessedZone
    changes: list[Change] = field(default_factory=list)

    def change_until(
        self, rng: random.Random, mean_gap: float, seconds: float | None, runs: int | None
    ) -> None:
        started = time.monotonic()
        next_change = started + (rng.uniform(0, 2 * mean_gap) if mean_gap else float("inf"))
        while (seconds is None or time.monotonic() - started < seconds) and (
            runs is None or self.log_path.read_text().count('"message": "done in ') < runs
        ):
            if self.loop.poll() is not None:
                raise RuntimeError(f"the loop exited {self.loop.returncode}:\n{self.tail()}")
            if time.monotonic() >= next_change:
                self.changes.append(self.databases.change())
                next_change = time.monotonic() + rng.uniform(0, 2 * mean_gap)
            self.look()
            time.sleep(POLL_SECONDS)

    def until_every_change_arrived(self) -> None:
        while pending := [c for c in self.changes if c.to_processed is None]:
            if time.monotonic() - pending[0].committed > TIMEOUT_SECONDS:
                raise RuntimeError(
                    f"{len(pending)} changes never reached the warehouse and the processed "
                    f"zone, e.g. payment {pending[0].payment_id}:\n{self.tail()}"
                )
            self.look()
            time.sleep(POLL_SECONDS)

    def look(self) -> None:
        """Time the pending changes that have arrived since the last look."""
        now = time.monotonic()
        waiting = [c for c in self.changes if c.to_warehouse is None]
        for change in self.databases.in_fact_payment(waiting) if waiting else []:
            change.to_warehouse = now - change.committed
        waiting = [c for c in self.changes if c.to_processed is None]
        for change in self.processed.holding(waiting) if waiting else []:
            change.to_processed = now - change.committed

    def tail(self) -> str:
        return self.log_path.read_text()[-3000:]


class _Databases:
    """Commits changes to totesys, and looks for them in the warehouse."""

    def __init__(self, source_url: str, warehouse_url: str, rng: random.Random) -> None:
        self.conn = psycopg2.connect(source_url)
        self.conn.autocommit = True
        self.warehouse = psycopg2.connect(warehouse_url)
        self.rng = rng
        with self.conn.cursor() as cur:
            cur.execute("select payment_id from payment")
            self.ids = [row[0] for row in cur.fetchall()]

    def change(self) -> Change:
        payment_id = self.rng.choice(self.ids)
        with self.conn.cursor() as cur:
            cur.execute(
                "update payment set payment_amount = payment_amount + 0.01, "
                "last_updated = (now() at time zone 'utc')::timestamp(3) "
                "where payment_id = %s returning last_updated",
                (payment_id,),
            )
            (last_updated,) = cur.fetchone()
        return Change(payment_id, last_updated, time.monotonic())

    def in_fact_payment(self, changes: list[Change]) -> list[Change]:
        with self.warehouse.cursor() as cur:
            cur.execute("select to_regclass('fact_payment') is not null")
            if not cur.fetchone()[0]:  # before the first run has built it
                self.warehouse.rollback()
                return []
            cur.execute(
                "select payment_id, last_updated_date + last_updated_time from fact_payment "
                "where payment_id = any(%s)",
                ([c.payment_id for c in changes],),
            )
            seen = set(cur.fetchall())
        self.warehouse.rollback()  # a new snapshot next time
        return [c for c in changes if (c.payment_id, c.last_updated) in seen]

    def close(self) -> None:
        self.conn.close()
        self.warehouse.close()


class _ProcessedZone:
    """Reads the processed zone's fact_payment day files, again only when one was replaced."""

    def __init__(self, processed_url: str) -> None:
        self.fs, self.root = filesystem(processed_url)
        self.read: dict[str, tuple[object, set[tuple[int, datetime]]]] = {}

    def holding(self, changes: list[Change]) -> list[Change]:
        seen: set[tuple[int, datetime]] = set()
        for day in {c.last_updated.date() for c in changes}:
            seen |= self._versions(day)
        return [c for c in changes if (c.payment_id, c.last_updated) in seen]

    def _versions(self, day: date) -> set[tuple[int, datetime]]:
        path = f"{self.root}/fact_payment/last_updated_date={day.isoformat()}/records.parquet"
        try:
            stamp = self.fs.info(path).get("mtime") or self.fs.info(path).get("LastModified")
        except FileNotFoundError:
            return set()
        if path in self.read and self.read[path][0] == stamp:
            return self.read[path][1]
        with self.fs.open(path, "rb") as file:
            table = pq.read_table(file, columns=["payment_id", "last_updated_time"])
        versions = {
            (payment_id, datetime.combine(day, at))
            for payment_id, at in zip(
                table.column("payment_id").to_pylist(),
                table.column("last_updated_time").to_pylist(),
                strict=True,
            )
        }
        self.read[path] = (stamp, versions)
        return versions
