"""The `totes` command line.

Commands import their stage lazily: dbt and dlt take seconds to import, `--help` should not.
"""

from __future__ import annotations

import atexit
import gc
import importlib.util
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from ingestion.common.database import scrub
from ingestion.config import SOURCE_DB, WAREHOUSE_DB, Settings, describe, load_settings, redact
from ingestion.continuous import StopRequest, held_by
from ingestion.errors import ConfigError, RunInProgress, RunStopped, TotesError
from ingestion.ops.log import Log, log_format, table_counts

if TYPE_CHECKING:
    from ingestion.ops.monitor import Monitor
    from ingestion.transform.dbt_build import DbtWorker


class _Cli(click.Group):
    """Logs failures as one line (no traceback, no password) and exits non-zero."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            # the reader went away (`totes ... | head`): stop writing, quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except Exception as error:
            sys.exit(_report(error))


def _report(error: Exception) -> int:
    """Log how a command (or one run of a loop) ended badly, as one line with no traceback
    (unless --debug) and no password; return its exit code."""
    if isinstance(error, RunInProgress | RunStopped):  # not failures
        reason = {"skipped": True} if isinstance(error, RunInProgress) else {"stopped": True}
        _log().info(str(error), text=f"totes: {error}", **reason)
        return error.exit_code
    if isinstance(error, TotesError):
        _log().error(str(error), exit_code=error.exit_code)
        return error.exit_code
    if click.get_current_context().meta.get("debug"):
        click.echo(_log().scrub(traceback.format_exc()), err=True)
    _log().error(
        f"{type(error).__name__}: {_first_line(error)} (run again with --debug for the traceback)",
        exit_code=1,
    )
    return 1


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _scrubber() -> Callable[[str], str]:
    """Masks the passwords of the configured URLs (from the environment and .env)."""
    try:
        settings = load_settings()
    except TotesError:
        return lambda text: text
    return lambda text: scrub(text, settings.source_url, settings.warehouse_url)


def _log() -> Log:
    """The command's log: JSON lines or text (TOTES_LOG_FORMAT), with any run context bound."""
    ctx = click.get_current_context()
    if "monitor" in ctx.meta:
        return ctx.meta["monitor"].log  # type: ignore[no-any-return]
    if "log" not in ctx.meta:
        try:
            chosen = log_format(os.environ)
        except TotesError:
            chosen = "text"  # the error itself is reported through this log
        ctx.meta["log"] = Log(chosen, scrub=_scrubber())
    log: Log = ctx.meta["log"]
    return log


@click.group(cls=_Cli)
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """totes: copy totesys into a parquet lake and a star-schema warehouse."""
    ctx.meta["debug"] = debug
    log_format(os.environ)  # a bad TOTES_LOG_FORMAT fails every command, clearly


@cli.group()
def local() -> None:
    """The embedded PostgreSQL (data under .totes/postgres)."""


@local.command("up")
def local_up() -> None:
    """Start it, with the databases totesys and warehouse. Already running is fine."""
    from ingestion.local.postgres import embedded

    server = embedded(load_settings())
    server.start(databases=(SOURCE_DB, WAREHOUSE_DB))
    click.echo(f"embedded Postgres is up on 127.0.0.1:{server.port} (data: {server.data_dir})")


@local.command("down")
def local_down() -> None:
    """Stop it. The data stays for the next `up`."""
    from ingestion.local.postgres import embedded

    embedded(load_settings()).stop()
    click.echo("embedded Postgres is stopped")


@local.command("status")
def local_status() -> None:
    """Say whether it runs, and where the pipeline's settings point."""
    from ingestion.local.postgres import embedded

    settings = load_settings()
    status = embedded(settings).status()
    state = f"running (pid {status.pid})" if status.running else "stopped"
    click.echo(f"embedded Postgres: {state} on 127.0.0.1:{status.port}, data {status.data_dir}")
    for name, url, is_embedded in (
        ("source", settings.source_url, settings.embedded_source),
        ("warehouse", settings.warehouse_url, settings.embedded_warehouse),
    ):
        where = "embedded" if is_embedded else "TOTES_" + name.upper() + "_URL"
        click.echo(f"{name:<10} {redact(url)}  ({where})")
    click.echo(f"{'lake':<10} {settings.lake_url}")
    click.echo(f"{'processed':<10} {settings.processed_url}")


@local.command(
    "psql",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option(
    "--database",
    type=click.Choice([WAREHOUSE_DB, SOURCE_DB]),
    default=WAREHOUSE_DB,
    show_default=True,
)
@click.argument("psql_arguments", nargs=-1, type=click.UNPROCESSED)
def local_psql(database: str, psql_arguments: tuple[str, ...]) -> None:
    """Open psql on its warehouse (or --database totesys), with the server's own psql. What
    follows the options goes to psql: `totes local psql -c "select count(*) from fact_payment"`."""
    from ingestion.local.postgres import embedded

    server = embedded(load_settings())
    server.start(databases=(SOURCE_DB, WAREHOUSE_DB))
    psql = str(server.bin_dir / "psql")
    # psql takes over this process: its prompt, its output and its exit code are the command's
    os.execv(psql, [psql, server.url(database), *psql_arguments])  # noqa: S606 (the server's own psql)


@cli.group()
def source() -> None:
    """The synthetic sources: the totesys database (TOTES_SOURCE_URL), the delivery files."""


@source.command("init")
@click.option("--scale", default=1.0, show_default=True, help="1 is about the real size.")
@click.option("--seed", default=42, show_default=True, help="Same seed, same data.")
@click.option("--reset", is_flag=True, help="Drop existing tables first (deletes their data).")
@click.option("--if-empty", is_flag=True, help="Leave a database that has tables as it is.")
def source_init(scale: float, seed: int, reset: bool, if_empty: bool) -> None:
    """Create the totesys schema and fill it with realistic fake data."""
    _require_local_group("faker", "source init")
    from ingestion.common.database import preflight
    from ingestion.local.source.generate import existing_tables, init_source

    settings = load_settings()
    preflight(settings, "source", on_retry=_retrying)
    if if_empty and not reset and existing_tables(settings.source_url):
        click.echo(f"totesys at {describe(settings.source_url)} already has tables: left as is")
        return
    started = time.perf_counter()
    counts = init_source(settings.source_url, scale, seed, reset=reset)
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    click.echo(
        f"created totesys at {describe(settings.source_url)}: {total:,} rows in {seconds:.1f} s "
        f"({total / seconds:,.0f} rows/s)"
    )
    click.echo(table_counts(counts))


@source.command("churn")
@click.option(
    "--orders", default=100, show_default=True, help="New orders (each + transaction + payment)."
)
@click.option(
    "--payments-paid", default=100, show_default=True, help="Unpaid payments to flip to paid."
)
@click.option(
    "--updates", default=10, show_default=True, help="Edits to addresses, departments, designs..."
)
@click.option(
    "--seed", default=None, type=int, help="Fix the random choices (default: new each time)."
)
def source_churn(orders: int, payments_paid: int, updates: int, seed: int | None) -> None:
    """Change the source the way the business does, stamped with the current time."""
    _require_local_group("faker", "source churn")
    from ingestion.common.database import preflight
    from ingestion.local.source.churn import churn

    settings = load_settings()
    preflight(settings, "source", on_retry=_retrying)
    result = churn(
        settings.source_url, orders, payments_paid, updates,
        seed if seed is not None else random.randrange(2**31),  # noqa: S311 (demo data, not a secret)
    )  # fmt: skip
    click.echo(
        f"churned totesys: {result.sales_orders} sales orders, {result.purchase_orders} purchase "
        f"orders (each with a transaction and a payment), {result.payments_paid} payments paid, "
        f"{result.updates} reference rows edited: {result.changed_rows} changed rows"
    )


@source.command("deliveries")
@click.option("--orders", default=100, show_default=True, help="Due sales orders to report on.")
@click.option("--bad", default=0, show_default=True, help="Bad files to add too.")
@click.option(
    "--seed", default=None, type=int, help="Fix the random choices (default: new each time)."
)
def source_deliveries(orders: int, bad: int, seed: int | None) -> None:
    """Drop a file of delivery events, as the partner would, in TOTES_DELIVERIES_URL."""
    from ingestion.common.database import preflight
    from ingestion.local.source.deliveries import drop_deliveries

    settings = load_settings()
    preflight(settings, "source", on_retry=_retrying)
    seed = seed if seed is not None else random.randrange(2**31)  # noqa: S311 (demo data)
    dropped = drop_deliveries(settings.source_url, settings.deliveries_url, orders, seed, bad)
    files = ", ".join(dropped.files + dropped.bad_files) or "no files (no sales order is due)"
    click.echo(
        f"dropped {dropped.events} delivery events and {len(dropped.bad_files)} bad files "
        f"in {settings.deliveries_url}: {files}"
    )


@cli.command("run")
@click.option(
    "--every",
    type=click.IntRange(min=0),
    metavar="SECONDS",
    help="Keep going: a run every SECONDS, start to start (0: back to back), in one process, "
    "until SIGTERM.",
)
def run_command(every: int | None) -> None:
    """One pipeline run: extract -> load -> dbt build -> quarantine -> export. SIGTERM stops it
    between two stages, and the next run goes on from there."""
    if every is None:
        _pipeline("run")
    else:
        _run_every(every)


@cli.command("rebuild")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def rebuild_command(yes: bool) -> None:
    """Rebuild the warehouse (raw, marts) and the processed zone from the lake alone."""
    if not yes:
        click.confirm(
            "This drops the warehouse's raw schema and rebuilds everything from the lake. Go on?",
            abort=True,
        )
    _pipeline("rebuild")


def _pipeline(command: str) -> None:
    settings = load_settings()
    stop = StopRequest()
    if command == "run":  # a rebuild's reset must be followed by its load: not stoppable
        stop.install()
    started_at = datetime.now(UTC)
    _preflight(command, settings, started_at)  # before importing dbt and dlt (seconds)
    from ingestion.transform.dbt_build import started_dbt

    # dbt's process first: it imports dbt on the second core while this one imports the rest
    with started_dbt() as dbt:
        _run_once(command, settings, started_at, stop, dbt)


def _run_every(seconds: int) -> None:
    """Continuous mode: a run every `seconds` (start to start) in this process, with dbt's
    process kept between runs, until SIGTERM. A failed run is reported (log, ledger,
    metrics, alert) like a scheduled one, and the next run is due as usual."""
    from ingestion.continuous import run_times

    settings = load_settings()
    stop = StopRequest()
    stop.install()
    meta = click.get_current_context().meta
    _log().info(
        f"totes run --every {seconds}: a run every {seconds} s until SIGTERM", every=seconds
    )
    from ingestion.transform.dbt_build import started_dbt

    def late(seconds_late: float) -> None:
        _log().info(
            f"that run took {seconds_late:.1f} s longer than the interval: the next starts now",
            late_seconds=round(seconds_late, 3),
        )

    runs = 0
    with started_dbt() as dbt:
        for _ in run_times(seconds, stop, late):
            runs += 1
            started_at = datetime.now(UTC)
            try:
                _preflight("run", settings, started_at)
                _run_once("run", settings, started_at, stop, dbt, in_loop=True)
            except Exception as error:  # reported; the loop goes on
                _report(error)
            finally:
                meta.pop("monitor", None)  # the loop's own lines carry no run id
    _log().info(f"stopped on SIGTERM after {runs} runs", runs=runs)


def _preflight(command: str, settings: Settings, started_at: datetime) -> None:
    """The databases answer, or the run fails now, recorded as failed (ledger, metrics, alert)
    where it can be. A rebuild never reads the source."""
    from ingestion.common.database import preflight

    try:
        preflight(settings, *(("warehouse",) if command == "rebuild" else ()), on_retry=_retrying)
    except Exception as error:
        _monitor(command, settings, started_at).close(error)
        raise


def _run_once(
    command: str,
    settings: Settings,
    started_at: datetime,
    stop: StopRequest,
    dbt: DbtWorker | None,
    in_loop: bool = False,
) -> None:
    monitor = _monitor(command, settings, started_at, stop)
    from ingestion.pipeline import rebuild, run

    source = "lake" if command == "rebuild" else describe(settings.source_url)
    monitor.log.info(f"totes {command}: {source} -> {describe(settings.warehouse_url)}")
    monitor.open()
    work = rebuild if command == "rebuild" else run
    try:
        report = work(settings, monitor, dbt)
    except BaseException as error:
        monitor.close(error)
        raise
    monitor.close(None)
    held: dict[str, float] = {}
    if in_loop:  # what the process holds after each run, which a loop must not let grow
        gc.collect()  # the run's garbage, before the wait: the count is then of live objects
        held = {
            **held_by(os.getpid()),
            "python_objects": len(gc.get_objects()),  # a leak shows here first, exactly
            **(held_by(dbt.pid, "dbt_") if dbt and dbt.pid else {}),
        }
    monitor.log.info(f"done in {report.seconds:.1f} s", seconds=round(report.seconds, 3), **held)


def _monitor(
    command: str, settings: Settings, started_at: datetime, stop: StopRequest | None = None
) -> Monitor:
    """The run's monitor; from now on the command's log lines (errors too) carry its run id
    and, once one has begun, the stage."""
    from ingestion.ops.monitor import Monitor

    monitor = Monitor(command, settings, _log(), started_at, lambda: bool(stop and stop.requested))
    click.get_current_context().meta["monitor"] = monitor
    return monitor


@cli.command(
    "dbt",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def dbt_command(arguments: tuple[str, ...]) -> None:
    """Any dbt command on this project and the configured warehouse, as `dbt` would run it
    from the repo root: `totes dbt test`, `totes dbt docs generate`. In the image, where the
    entrypoint is totes, `docker run IMAGE dbt test` does the same."""
    from ingestion.common.database import preflight
    from ingestion.transform.dbt_build import run_dbt

    settings = load_settings()
    preflight(settings, "warehouse", on_retry=_retrying)
    result = run_dbt(settings.warehouse_url, *arguments)
    sys.exit(0 if result.success else 1)


@cli.command("status")
@click.option("--runs", default=10, show_default=True, help="How many recent runs to show.")
def status_command(runs: int) -> None:
    """Recent runs, each table's lag against the 30-minute SLA, the quarantine, the next step.
    Exits 4 when a table is behind, so it serves as a health check."""
    from ingestion.common.database import preflight
    from ingestion.errors import SlaBreached
    from ingestion.ops.status import read_status, render

    settings = load_settings()
    preflight(settings, "warehouse", on_retry=_retrying)
    status = read_status(settings.warehouse_url, runs)
    click.echo(f"totes status: {describe(settings.warehouse_url)}\n")
    for line in render(status):
        click.echo(line)
    if status.behind:
        raise SlaBreached(
            f"{len(status.behind)} tables are behind the SLA or were never brought up to date: "
            + ", ".join(status.behind)
        )


@cli.group()
def quarantine() -> None:
    """Source versions held out of the warehouse because of bad values, and bad delivery files."""


@quarantine.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also show superseded versions and files.")
def quarantine_list(show_all: bool) -> None:
    """What is held, and why. A held version goes on by itself once it passes."""
    from ingestion.common.database import preflight
    from ingestion.transform.quarantine import quarantined_rows, rejected_files

    settings = load_settings()
    preflight(settings, "warehouse", on_retry=_retrying)
    rows = [r for r in quarantined_rows(settings.warehouse_url) if show_all or r.status == "held"]
    files = [f for f in rejected_files(settings.warehouse_url) if show_all or not f.replaced]
    if not rows and not files:
        click.echo("nothing is held in quarantine")
        return
    if rows:
        click.echo(f"{'table':<16}{'id':>8}  {'last_updated':<24}{'status':<12}reason")
    for row in rows:
        stamp = row.last_updated.isoformat(sep=" ", timespec="milliseconds")
        click.echo(
            f"{row.source_table:<16}{row.source_id:>8}  {stamp:<24}{row.status:<12}{row.reason}"
        )
    if rows and files:
        click.echo()
    if files:
        click.echo(f"{'delivery file':<32}{'modified':<22}reason")
    for file in files:
        stamp = file.file_modified_at.isoformat(sep=" ", timespec="seconds")[:19]
        replaced = " (since replaced)" if file.replaced else ""
        click.echo(f"{file.source_file:<32}{stamp:<22}{file.reason}{replaced}")


@cli.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 in a container.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def api_command(host: str, port: int) -> None:
    """Serve the payments API (/payments/last5, /payments/next5, /health; docs at /docs).

    Every path but /health needs a bearer token: one in the Secrets Manager secret
    TOTES_API_TOKENS_SECRET names, else one in $TOTES_HOME/api-tokens (made if missing).
    """
    import uvicorn

    from ingestion.apps import api_auth
    from ingestion.apps.payments_api import create_app
    from ingestion.local.postgres import ensure_embedded

    settings = load_settings()
    if settings.embedded_warehouse:  # the demo's; a real warehouse is never started here
        ensure_embedded(settings)
    tokens = api_auth.token_source(settings.api_tokens_secret, settings.home)
    url = f"http://{host}:{port}"
    click.echo(f"payments API: {url}/docs, on {describe(settings.warehouse_url)}")
    click.echo(tokens.instructions(url))  # where a token is, never the token
    # the client address of the rate limit is X-Forwarded-For's only from FORWARDED_ALLOW_IPS
    app = create_app(settings.warehouse_url, tokens)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@cli.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 in a container.")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
def dashboard_command(host: str, port: int) -> None:
    """Serve the dashboard: revenue, designs, staff, payments and purchases in GBP, and the
    pipeline's runs and freshness."""
    from pathlib import Path

    _require_local_group("streamlit", "dashboard")
    from ingestion.local.postgres import ensure_embedded

    settings = load_settings()
    if settings.embedded_warehouse:  # the demo's; a real warehouse is never started here
        ensure_embedded(settings)
    click.echo(f"dashboard: http://{host}:{port}, on {describe(settings.warehouse_url)}")
    script = Path(__file__).parent / "apps" / "dashboard.py"
    streamlit = [sys.executable, "-m", "streamlit", "run", str(script)]
    options = {
        "server.address": host,
        "server.port": port,
        "server.headless": "true",  # no browser opened, no e-mail prompt
        "server.fileWatcherType": "none",
        "browser.gatherUsageStats": "false",
        "client.toolbarMode": "viewer",
        "theme.base": "light",
    }
    # streamlit takes over this process, so Ctrl-C and a container's SIGTERM reach it
    os.execv(sys.executable, [*streamlit, *(f"--{k}={v}" for k, v in options.items())])  # noqa: S606


def _require_local_group(module: str, command: str) -> None:
    """Refuse in one line where the `local` dependency group is left out (the image)."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"`totes {command}` needs {module}, which this installation leaves out (the "
            "production image has no demo data or dashboard): run it from a checkout"
        )


def _retrying(message: str) -> None:
    _log().retrying(message)


def main() -> None:
    # dbt and dlt keep about 400,000 objects alive for a whole run: a full collection after
    # every 100 young ones (not 10) stops rescanning them, 1.1 s of a 13 s run. At exit, freezing
    # them skips the interpreter's final collection and teardown (2 s); the OS frees the memory.
    gc.set_threshold(700, 10, 100)
    atexit.register(gc.freeze)
    cli(prog_name="totes")
