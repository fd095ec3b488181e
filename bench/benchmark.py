"""`make bench`: what a run costs at several source scales, on an embedded Postgres of its own.

For each scale: source generation, the copy limit (COPY out of totesys piped into COPY into a
scratch database, which no pipeline can beat), the initial load, an incremental run after about
1,000 changed source rows, freshness (source commit -> visible in fact_*), and the full refresh a
user would otherwise run. Every figure is the median of `repeats` samples, with min and max.
Runs are timed as a user meets them: `totes run` in a child process, startup included.

Continuous mode (bench.loop), at the smallest and largest scales: `totes run --every 30` while
changes are committed at random moments, each timed to fact_payment and to the processed zone
(p50, p95, max). At the smallest scale: what the loop process and its dbt process hold over 500
runs back to back.

Writes results.json and results.md (see `render_markdown`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from bench import s3_requests
from bench.loop import LoopResult, run_loop
from ingestion.extract import TABLES
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.churn import churn
from ingestion.local.source.generate import init_source

REPO = Path(__file__).resolve().parent.parent
SOURCE_DB, WAREHOUSE_DB, SCRATCH_DB = "bench_totesys", "bench_warehouse", "bench_copy_limit"
S3_WAREHOUSE_DB = "bench_s3_warehouse"  # the warehouse of the runs whose S3 requests are counted
# `totes source churn` options that change 1,000 source rows: 250 orders (each an order, a
# transaction and a payment), 230 payments flipped to paid, 20 reference rows edited. The bench
# calls it in-process, as it does `source init`: it is set-up, not a timed run.
CHURN = {"orders": 250, "payments_paid": 230, "updates": 20}
SCHEDULE_SECONDS = 300  # the production schedule (terraform: schedule_expression)
STAGES = ("extract", "fx", "deliveries", "load", "dbt", "quarantine", "export")
WHERE = ("warehouse", "processed")  # where continuous mode's changes are timed to
# what the loop logs after each run, for itself and its dbt process
HELD = ("rss_mib", "dbt_rss_mib", "open_files", "dbt_open_files", "python_objects")
TARGETS = {
    "incremental_scale_1_seconds": 15.0,
    "continuous_p95_seconds": 45.0,
    "continuous_max_seconds": 60.0,
    "incremental_largest_over_smallest": 1.5,
    "initial_over_copy_limit": 3.0,
    "initial_peak_rss_mib": 1536.0,
    "generation_rows_per_second": 200_000.0,
}


@dataclass(frozen=True)
class LoopPlan:
    """How continuous mode is measured: the loop's interval, how long changes are committed
    (one every `mean_gap` seconds on average), and how many runs the memory figure spans."""

    every: int = 30
    seconds: float = 240
    mean_gap: float = 8
    memory_runs: int = 500


@dataclass(frozen=True)
class Sample:
    """One timed `totes` command: wall seconds, the run's own stage split, and peak RSS."""

    wall: float
    stages: dict[str, float]
    peak_rss_mib: float


class Bench:
    """The databases and folders of one benchmark, on a given Postgres server."""

    def __init__(self, server: LocalPostgres, home: Path) -> None:
        self.server, self.home = server, home
        self.source_url = server.url(SOURCE_DB)
        self.warehouse_url = server.url(WAREHOUSE_DB)
        self.scratch_url = server.url(SCRATCH_DB)

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TOTES_", "DBT_"))}
        env.update(
            TOTES_SOURCE_URL=self.source_url,
            TOTES_WAREHOUSE_URL=self.warehouse_url,
            TOTES_LAKE_URL=str(self.home / "lake"),
            TOTES_PROCESSED_URL=str(self.home / "processed"),
            TOTES_HOME=str(self.home),
            TOTES_LOG_FORMAT="json",
            # the developer's target/ (manifest, partial parse) is left alone
            DBT_TARGET_PATH=str(self.home / "target"),
            DBT_LOG_PATH=str(self.home / "logs"),
        )
        return env

    def totes(self, *args: str) -> Sample:
        """Run `totes <args>` to completion (cwd: the bench home, so no .env is read)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile("w+") as output:
            started = time.perf_counter()
            child = subprocess.Popen(  # noqa: S603 (this environment's totes, no shell)
                [str(Path(sys.executable).parent / "totes"), *args],
                env=self.environment(),
                cwd=self.home,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
            with _TreeMemory(child.pid) as tree:
                _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - started
            child.returncode = os.waitstatus_to_exitcode(status)
            output.seek(0)
            log = output.read()
        if child.returncode != 0:
            raise RuntimeError(f"totes {' '.join(args)} exited {child.returncode}:\n{log[-3000:]}")
        # wait4's peak is the largest single process: the run's dbt process is a second one
        return Sample(wall, _stage_seconds(log), max(usage.ru_maxrss / 1024, tree.peak_mib))

    def reset_warehouse(self) -> None:
        """An empty warehouse, lake and processed zone: the state before an initial load."""
        _recreate_database(self.server, WAREHOUSE_DB)
        for zone in ("lake", "processed"):
            shutil.rmtree(self.home / zone, ignore_errors=True)


class _TreeMemory:
    """The peak of a process's RSS plus its descendants', sampled every 50 ms while in the
    `with` block. Pages a fork shares count twice: the figure may overstate, never understate."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mib = pid, 0.0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _TreeMemory:
        self._sampler.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._sampler.join()

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.05):
            pages = sum(_resident_pages(pid) for pid in _process_tree(self.pid))
            self.peak_mib = max(self.peak_mib, pages * page / 2**20)


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc; elsewhere just `pid`)."""
    tree, index = [pid], 0
    while index < len(tree):
        for children in Path(f"/proc/{tree[index]}/task").glob("*/children"):
            with suppress(OSError):  # the process ended meanwhile
                tree += [int(child) for child in children.read_text().split()]
        index += 1
    return tree


def _resident_pages(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError):
        return 0


def _stage_seconds(log: str) -> dict[str, float]:
    """The `<stage> finished` events of a run's JSON log."""
    seconds = {}
    for line in log.splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        message = event.get("message", "")
        if message.endswith(" finished") and "seconds" in event:
            seconds[message.removesuffix(" finished")] = float(event["seconds"])
    return seconds


def _recreate_database(server: LocalPostgres, name: str) -> None:
    conn = psycopg2.connect(server.url("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )
            cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def _query(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


# --- the copy limit ----------------------------------------------------------------------------


def copy_limit(source_url: str, scratch_url: str) -> float:
    """Seconds to move the eleven tables with COPY TO STDOUT piped into COPY FROM STDIN (binary),
    one table after another, into unindexed tables of the same column types."""
    with _connection(scratch_url) as scratch, _connection(source_url) as source:
        columns = _column_types(source)
        with scratch.cursor() as cur:
            for table in TABLES:
                cur.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(table)))
                cur.execute(
                    sql.SQL("create table {} ({})").format(
                        sql.Identifier(table),
                        sql.SQL(", ").join(
                            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
                            for name, kind in columns[table]
                        ),
                    )
                )
        scratch.commit()
        started = time.perf_counter()
        for table in TABLES:
            _pipe_table(source, scratch, table)
        scratch.commit()
        return time.perf_counter() - started


def _column_types(conn: psycopg2.extensions.connection) -> dict[str, list[tuple[str, str]]]:
    """Each table's columns with their SQL types; enums become text (same binary form)."""
    with conn.cursor() as cur:
        cur.execute(
            "select c.relname, a.attname, "
            "  case when t.typtype = 'e' then 'text' else format_type(a.atttypid, a.atttypmod) end "
            "from pg_attribute a join pg_class c on c.oid = a.attrelid "
            "join pg_namespace n on n.oid = c.relnamespace join pg_type t on t.oid = a.atttypid "
            "where n.nspname = 'public' and c.relkind = 'r' and a.attnum > 0 "
            "  and not a.attisdropped order by c.relname, a.attnum"
        )
        columns: dict[str, list[tuple[str, str]]] = {}
        for table, name, kind in cur.fetchall():
            columns.setdefault(table, []).append((name, kind))
    return columns


def _pipe_table(
    source: psycopg2.extensions.connection, target: psycopg2.extensions.connection, table: str
) -> None:
    read_end, write_end = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with open(write_end, "wb") as sink, source.cursor() as cur:
                statement = sql.SQL("copy {} to stdout (format binary)").format(
                    sql.Identifier(table)
                )
                cur.copy_expert(statement.as_string(cur), sink, size=1 << 20)
        except BaseException as error:  # re-raised below, in the calling thread
            failure.append(error)

    producer = threading.Thread(target=produce)
    producer.start()
    with open(read_end, "rb") as pipe, target.cursor() as cur:
        statement = sql.SQL("copy {} from stdin (format binary)").format(sql.Identifier(table))
        cur.copy_expert(statement.as_string(cur), pipe, size=1 << 20)
    producer.join()
    if failure:
        raise failure[0]


@contextmanager
def _connection(url: str) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(url)
    try:
        yield conn
    finally:
        conn.close()


# --- one scale ---------------------------------------------------------------------------------


def measure_scale(
    bench: Bench,
    scale: float,
    repeats: int,
    say: Callable[[str], None],
    loop: LoopPlan | None = None,
) -> dict[str, Any]:
    """Every figure for one scale, and continuous mode's freshness if given a `loop`. Order
    matters: the full refresh renumbers the facts, so it comes last."""
    generation: list[float] = []
    rows = 0
    for _ in range(repeats):
        _recreate_database(bench.server, SOURCE_DB)  # an empty source, as `source init` expects
        started = time.perf_counter()
        rows = sum(init_source(bench.source_url, scale, seed=42).values())
        generation.append(time.perf_counter() - started)
    say(f"scale {scale:g}: generated {rows:,} rows, median {statistics.median(generation):.1f} s")

    limit = [copy_limit(bench.source_url, bench.scratch_url) for _ in range(repeats)]
    say(f"scale {scale:g}: copy limit median {statistics.median(limit):.1f} s")

    initial: list[Sample] = []
    for _ in range(repeats):
        bench.reset_warehouse()
        initial.append(bench.totes("run"))
    say(f"scale {scale:g}: initial load median {_median_wall(initial):.1f} s")

    incremental: list[Sample] = []
    freshness: list[float] = []
    for seed in range(repeats):
        churn(bench.source_url, **CHURN, seed=seed)
        committed = time.perf_counter()  # churn has committed when it returns
        (newest,) = _query(bench.source_url, "select max(payment_id) from payment")[0]
        incremental.append(bench.totes("run"))
        freshness.append(time.perf_counter() - committed)
        (seen,) = _query(
            bench.warehouse_url,
            "select count(*) from fact_payment where payment_id = %s",
            (newest,),
        )[0]
        if not seen:
            raise RuntimeError(f"payment {newest} is not in fact_payment after the run")
    say(f"scale {scale:g}: incremental median {_median_wall(incremental):.1f} s")

    continuous = None
    if loop is not None:
        result = run_loop(
            bench.environment(), bench.home, loop.every, seconds=loop.seconds,
            mean_gap=loop.mean_gap, seed=int(scale * 100),
        )  # fmt: skip
        continuous = _continuous_figures(result, loop)
        say(
            f"scale {scale:g}: continuous, commit -> processed zone: "
            f"p95 {continuous['to_processed']['p95']:.1f} s, "
            f"max {continuous['to_processed']['max']:.1f} s"
        )

    full_refresh = [
        bench.totes("dbt", "build", "--full-refresh", "--exclude-resource-type", "unit_test")
        for _ in range(repeats)
    ]
    say(f"scale {scale:g}: full refresh median {_median_wall(full_refresh):.1f} s")

    initial_wall = _stat([s.wall for s in initial])
    incremental_wall = _stat([s.wall for s in incremental])
    return {
        "source_rows": rows,
        "generation": {
            "seconds": _stat(generation),
            "rows_per_second": _stat([rows / s for s in generation]),
        },
        "copy_limit_seconds": _stat(limit),
        "initial_load": {
            "wall_seconds": initial_wall,
            "stages": _stage_stats(initial),
            "peak_rss_mib": _stat([s.peak_rss_mib for s in initial]),
            "over_copy_limit": initial_wall["median"] / statistics.median(limit),
        },
        "incremental": {
            "changed_rows": 1000,
            "wall_seconds": incremental_wall,
            "stages": _stage_stats(incremental),
            "peak_rss_mib": _stat([s.peak_rss_mib for s in incremental]),
        },
        "freshness": {
            "commit_to_fact_seconds": _stat(freshness),
            "schedule_seconds": SCHEDULE_SECONDS,
            "worst_case_in_production_seconds": SCHEDULE_SECONDS + max(freshness),
        },
        **({"continuous": continuous} if continuous else {}),
        "full_refresh": {
            "wall_seconds": _stat([s.wall for s in full_refresh]),
            "over_incremental": statistics.median(s.wall for s in full_refresh)
            / incremental_wall["median"],
        },
    }


def _continuous_figures(result: LoopResult, loop: LoopPlan) -> dict[str, Any]:
    if result.exit_code != 0 or not result.stopped or not result.changes:
        raise RuntimeError(f"the loop failed or saw no change:\n{result.log[-3000:]}")
    return {
        "interval_seconds": loop.every,
        "changes": len(result.changes),
        "runs": len(result.runs),
        "failed_runs": result.failed_runs,
        **{f"to_{where}": _percentiles(result.seconds(where)) for where in WHERE},
    }


def measure_memory(bench: Bench, loop: LoopPlan, say: Callable[[str], None]) -> dict[str, Any]:
    """What the loop and its dbt process hold after each of `loop.memory_runs` runs back to
    back, with a change every few seconds."""
    result = run_loop(
        bench.environment(), bench.home, 0, runs=loop.memory_runs, mean_gap=3, seed=500
    )
    if result.exit_code != 0 or result.failed_runs:
        raise RuntimeError(f"the loop failed:\n{result.log[-3000:]}")
    runs = result.runs
    early = runs[min(len(runs) - 1, 10)]  # after the first runs have warmed every cache

    def held(key: str) -> dict[str, float]:
        return {"after_run_10": early[key], "after_last_run": runs[-1][key], "max": max(
            run[key] for run in runs
        )}  # fmt: skip

    figures = {
        "runs": len(runs),
        "run_seconds": _stat([run["seconds"] for run in runs]),
        **{key: held(key) for key in HELD},
    }
    say(
        f"memory over {len(runs)} runs: loop {figures['rss_mib']['after_run_10']:.0f} -> "
        f"{figures['rss_mib']['after_last_run']:.0f} MiB, dbt "
        f"{figures['dbt_rss_mib']['after_run_10']:.0f} -> "
        f"{figures['dbt_rss_mib']['after_last_run']:.0f} MiB"
    )
    return figures


def measure_s3_requests(bench: Bench, say: Callable[[str], None]) -> dict[str, Any]:
    """S3 requests of a run with no change and of one after a small churn (bench.s3_requests),
    with a warehouse of their own."""
    _recreate_database(bench.server, S3_WAREHOUSE_DB)
    environment = {**bench.environment(), "TOTES_WAREHOUSE_URL": bench.server.url(S3_WAREHOUSE_DB)}

    def run(env: dict[str, str], cwd: Path) -> None:
        done = subprocess.run(  # noqa: S603 (this environment's totes, no shell)
            [str(Path(sys.executable).parent / "totes"), "run"],
            env=env, cwd=cwd, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"totes run exited {done.returncode}:\n{done.stdout[-3000:]}")

    return s3_requests.measure(environment, bench.home / "s3", bench.source_url, run, say)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = statistics.quantiles(ordered, n=20, method="inclusive")[-1] if len(ordered) > 1 else 0
    return {
        "p50": statistics.median(ordered),
        "p95": p95 or ordered[-1],
        "max": ordered[-1],
        "min": ordered[0],
    }


def _median_wall(samples: list[Sample]) -> float:
    return statistics.median(s.wall for s in samples)


def _stat(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _stage_stats(samples: list[Sample]) -> dict[str, dict[str, float]]:
    return {
        stage: _stat([s.stages.get(stage, 0.0) for s in samples])
        for stage in STAGES
        if any(stage in s.stages for s in samples)
    }


# --- the whole benchmark -----------------------------------------------------------------------


def run_benchmark(
    server: LocalPostgres,
    home: Path,
    scales: list[float],
    repeats: int,
    say: Callable[[str], None] = print,
    loop: LoopPlan | None = None,
    count_s3_requests: bool = True,
) -> dict[str, Any]:
    """Every figure at each scale; continuous mode (`loop`, default LoopPlan()) at the
    smallest and largest; S3 requests per run at the smallest, if asked."""
    loop = loop or LoopPlan()
    server.start(databases=(SOURCE_DB, WAREHOUSE_DB, SCRATCH_DB))
    bench = Bench(server, home)
    looped = {min(scales), max(scales)}
    measured = {}
    memory = requests = None
    for scale in scales:
        continuous = loop if scale in looped else None
        measured[f"{scale:g}"] = measure_scale(bench, scale, repeats, say, continuous)
        if scale == min(scales):  # on the same source: the loop's memory, S3's requests
            memory = measure_memory(bench, loop, say)
            requests = measure_s3_requests(bench, say) if count_s3_requests else None
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(server.url("postgres")),
        "repeats": repeats,
        "churn": " ".join(f"--{option.replace('_', '-')} {n}" for option, n in CHURN.items()),
        "scales": measured,
        "memory": memory,
        "s3_requests_per_run": requests,
    }
    results["targets"] = targets(results["scales"])
    return results


def machine_facts(postgres_url: str) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    ((postgres,),) = _query(postgres_url, "show server_version")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgres": postgres,
        "packages": {
            name: version(name) for name in ("dbt-core", "dbt-postgres", "dlt", "pyarrow")
        },
        "commit": _commit(),
    }


def _commit() -> str:
    """The commit measured, `-dirty` when the code differs from it. The results files do not
    count: a smoke run rewrites them before the full bench runs."""

    def git(*args: str) -> str:
        # git from PATH, no shell: it names the commit measured
        done = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", ".", ":(exclude)bench/results.*")
    return f"{commit}-dirty" if changed else commit


def targets(scales: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the figure it is judged on (the largest scale measured
    stands in for scale 100, the smallest for scale 1)."""
    ordered = sorted(scales, key=float)
    small, large = scales[ordered[0]], scales[ordered[-1]]

    def target(name: str, figure: str, value: float, at_most: bool) -> dict[str, Any]:
        limit = TARGETS[name]
        met = value <= limit if at_most else value >= limit
        sign = "≤" if at_most else "≥"
        return {"figure": figure, "target": f"{sign} {limit:g}", "value": value, "met": met}

    incremental = [scale["incremental"]["wall_seconds"]["median"] for scale in (small, large)]
    # the growth ratio needs two scales: a single-scale run (the smoke run) leaves it out
    growth = [
        target(
            "incremental_largest_over_smallest",
            f"incremental run, scale {ordered[-1]} ÷ scale {ordered[0]}",
            incremental[1] / incremental[0],
            at_most=True,
        )
    ]
    continuous = [
        target(
            f"continuous_{figure}_seconds",
            f"continuous (--every {scale['continuous']['interval_seconds']}), commit → "
            f"processed zone, {figure}, scale {name}, s",
            scale["continuous"]["to_processed"][figure],
            at_most=True,
        )
        for name, scale in ((ordered[0], small), (ordered[-1], large))
        if "continuous" in scale
        for figure in ("p95", "max")
    ]
    if len(ordered) == 1:
        continuous = continuous[:2]  # one scale is both the smallest and the largest
    return [
        target(
            "incremental_scale_1_seconds",
            f"incremental run, scale {ordered[0]}, s",
            incremental[0],
            at_most=True,
        ),
        *(growth if len(ordered) > 1 else []),
        target(
            "initial_over_copy_limit",
            f"initial load, scale {ordered[-1]}, ÷ copy limit",
            large["initial_load"]["over_copy_limit"],
            at_most=True,
        ),
        target(
            "initial_peak_rss_mib",
            f"peak RSS, initial load at scale {ordered[-1]}, MiB",
            large["initial_load"]["peak_rss_mib"]["max"],
            at_most=True,
        ),
        target(
            "generation_rows_per_second",
            f"source generation, scale {ordered[-1]}, rows/s",
            large["generation"]["rows_per_second"]["median"],
            at_most=False,
        ),
        *continuous,
    ]


def render_markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    scales = results["scales"]
    names = list(scales)

    def cell(stat: dict[str, float], unit: str = "s", digits: int = 1) -> str:
        return (
            f"{stat['median']:,.{digits}f} {unit} "
            f"({stat['min']:,.{digits}f}-{stat['max']:,.{digits}f})"
        )

    def row(label: str, value: Callable[[dict[str, Any]], str]) -> str:
        return f"| {label} | " + " | ".join(value(scales[name]) for name in names) + " |"

    def stage_rows(run: str) -> list[str]:
        """A row per stage of a run's split (blank where a scale has no such stage)."""
        return [
            row(
                f"· {stage}",
                lambda s, stage=stage: (
                    cell(s[run]["stages"][stage]) if stage in s[run]["stages"] else ""
                ),
            )
            for stage in STAGES
        ]

    interval = next(
        (s["continuous"]["interval_seconds"] for s in scales.values() if "continuous" in s), 30
    )
    lines = [
        f"Measured {results['measured_at']} on {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB RAM; PostgreSQL {machine['postgres']} (embedded), "
        f"Python {machine['python']}, "
        + ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
        + f"; commit {machine['commit']}. Median of {results['repeats']} runs (min-max). "
        f"Incremental: `totes source churn {results['churn']}` (1,000 changed rows), then "
        "`totes run`; wall time includes process startup.",
        "",
        "| figure | " + " | ".join(f"scale {name}" for name in names) + " |",
        "|---|" + "---|" * len(names),
        row("source rows", lambda s: f"{s['source_rows']:,}"),
        row("source generation", lambda s: cell(s["generation"]["seconds"])),
        row(
            "generation rows/s",
            lambda s: f"{s['generation']['rows_per_second']['median']:,.0f}",
        ),
        row("copy limit", lambda s: cell(s["copy_limit_seconds"])),
        row("initial load", lambda s: cell(s["initial_load"]["wall_seconds"])),
        *stage_rows("initial_load"),
        row("initial load ÷ copy limit", lambda s: f"{s['initial_load']['over_copy_limit']:.1f}"),
        row("peak RSS, initial load", lambda s: cell(s["initial_load"]["peak_rss_mib"], "MiB", 0)),
        row("incremental run", lambda s: cell(s["incremental"]["wall_seconds"])),
        *stage_rows("incremental"),
        row(
            "freshness: commit → fact",
            lambda s: cell(s["freshness"]["commit_to_fact_seconds"]),
        ),
        row(
            f"freshness in production (+{SCHEDULE_SECONDS} s schedule), worst",
            lambda s: f"{s['freshness']['worst_case_in_production_seconds']:,.0f} s",
        ),
        *(
            row(
                f"continuous (`--every {interval}`): commit → {label}, p50 / p95 / max",
                lambda s, where=where: _percentile_cell(s.get("continuous"), where),
            )
            for where, label in (("warehouse", "fact_payment"), ("processed", "processed zone"))
        ),
        row(
            "full refresh (`dbt build --full-refresh`)",
            lambda s: cell(s["full_refresh"]["wall_seconds"]),
        ),
        row(
            "full refresh ÷ incremental run",
            lambda s: f"{s['full_refresh']['over_incremental']:.1f}",
        ),
        "",
        *_memory_lines(results.get("memory")),
        *_request_lines(results.get("s3_requests_per_run")),
        "| target | goal | measured | met |",
        "|---|---|---|---|",
        *(
            f"| {t['figure']} | {t['target']} | {t['value']:,.2f} | {'yes' if t['met'] else 'no'} |"
            for t in results["targets"]
        ),
    ]
    return "\n".join(lines) + "\n"


def _percentile_cell(continuous: dict[str, Any] | None, where: str) -> str:
    if continuous is None:
        return ""
    figures = continuous[f"to_{where}"]
    return (
        f"{figures['p50']:.1f} / {figures['p95']:.1f} / {figures['max']:.1f} s "
        f"({continuous['changes']} changes)"
    )


def _request_lines(requests: dict[str, Any] | None) -> list[str]:
    if requests is None:
        return []
    return [
        "S3 requests of one `totes run` at the smallest scale, counted at an S3 API server "
        "(PUT, COPY, POST, LIST / GET, HEAD): "
        + "; ".join(
            f"{label} {requests[key]['put_list']} / {requests[key]['get']}"
            for key, label in (
                ("initial", "initial load"),
                ("no_change", "no change"),
                ("small_change", "after ~60 changed rows"),
            )
        )
        + ".",
        "",
    ]


def _memory_lines(memory: dict[str, Any] | None) -> list[str]:
    """The loop's memory and files after run 10 and after its last run."""
    if memory is None:
        return []
    names = {
        "rss_mib": "loop process, resident MiB",
        "dbt_rss_mib": "its dbt process, resident MiB",
        "open_files": "loop process, open files",
        "dbt_open_files": "its dbt process, open files",
        "python_objects": "loop process, live Python objects",
    }
    return [
        f"Continuous mode, {memory['runs']} runs back to back (`--every 0`, a change every "
        f"3 s on average; a run took {memory['run_seconds']['median']:.1f} s, median):",
        "",
        "| held | after run 10 | after the last run | most |",
        "|---|---|---|---|",
        *(
            f"| {label} | {memory[key]['after_run_10']:,.0f} | "
            f"{memory[key]['after_last_run']:,.0f} | {memory[key]['max']:,.0f} |"
            for key, label in names.items()
        ),
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1 10 100", help="space-separated source scales")
    parser.add_argument("--repeats", type=int, default=3, help="samples per figure (median)")
    parser.add_argument("--home", type=Path, default=REPO / ".totes" / "bench")
    parser.add_argument("--port", type=int, default=54339, help="the bench's own Postgres port")
    parser.add_argument("--out", type=Path, default=REPO / "bench")
    parser.add_argument(
        "--loop-seconds", type=float, default=LoopPlan.seconds,
        help="how long continuous mode is measured at a scale",
    )  # fmt: skip
    parser.add_argument(
        "--memory-runs", type=int, default=LoopPlan.memory_runs,
        help="runs of the loop the memory figure spans",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats: every figure is a median of at least 3 runs")
    scales = [float(s) for s in args.scales.split()]
    server = LocalPostgres(args.home / "postgres", args.port)
    try:
        plan = LoopPlan(seconds=args.loop_seconds, memory_runs=args.memory_runs)
        results = run_benchmark(server, args.home, scales, args.repeats, loop=plan)
    finally:
        server.stop()
    write_results(results, args.out)
    print((args.out / "results.md").read_text())


def write_results(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(render_markdown(results))


if __name__ == "__main__":
    main()
