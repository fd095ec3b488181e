"""The run's dbt process (transform.dbt_build.DbtWorker), which `totes run` builds in: it never
outlives the run that started it. What it builds is checked by every test that runs `totes`
(the crash harness's runs among them); tests that call `pipeline.run` build in-process. Last,
what a build writes to dbt.log."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ingestion.config import Settings
from ingestion.errors import TotesError
from ingestion.pipeline import run
from ingestion.transform.dbt_build import DbtWorker, dbt_build, failure_detail, started_dbt

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="dbt runs in-process outside Linux"
)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def wait_until_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_dbt_process_dies_with_a_sigkilled_run(stack: Settings) -> None:
    """SIGKILL leaves the run no chance to clean up: the kernel ends its dbt process
    (PR_SET_PDEATHSIG), so a killed run never leaves a build writing beside the next run.
    A `sleep` keeps the run's end of the pipe open, so the dbt process cannot learn of the
    death from the pipe: only the kernel's signal can end it."""
    script = (
        "import subprocess, sys, time\n"
        "from ingestion.transform.dbt_build import DbtWorker\n"
        "worker = DbtWorker()\n"
        "worker.parse(sys.argv[1])\n"
        "holder = subprocess.Popen(['sleep', '600'], pass_fds=[worker._requests.fileno()])\n"
        "print(worker.pid, holder.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", script, stack.warehouse_url], stdout=subprocess.PIPE, text=True
    )
    assert run.stdout is not None
    worker, holder = map(int, run.stdout.readline().split())
    try:
        assert alive(worker)
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert wait_until_gone(worker), f"dbt process {worker} outlived its killed run"
    finally:
        os.kill(holder, signal.SIGKILL)
        if alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_a_run_that_fails_before_dbt_leaves_no_dbt_process(stack: Settings) -> None:
    missing_source = replace(stack, source_url=stack.source_url + "_missing")
    with pytest.raises(Exception, match="does not exist"), started_dbt() as dbt:
        run(missing_source, dbt=dbt)
    assert multiprocessing.active_children() == []


def test_a_dbt_process_that_died_fails_the_build_clearly_and_the_next_run_gets_a_new_one(
    stack: Settings,
) -> None:
    worker = DbtWorker()
    dead = worker.pid
    assert dead is not None
    os.kill(dead, signal.SIGKILL)
    try:
        with pytest.raises(
            TotesError, match=r"the dbt process ended during the run \(exit code -9\)"
        ):
            dbt_build(stack.warehouse_url, worker=worker)
        worker.parse(stack.warehouse_url)  # as the next run of a loop does
        assert worker.pid not in (None, dead)
        built = dbt_build(stack.warehouse_url, "--resource-type", "seed", worker=worker)
        assert built.passed > 0
    finally:
        worker.close()


def test_a_process_that_ran_dbt_can_still_start_one_that_parses(
    stack: Settings, tmp_path: Path
) -> None:
    """A fork copies dbt's parser thread pool without its threads. The child parses fully (a
    target folder of its own) after the parent did; a hang shows as the timeout."""
    script = (
        "import os, sys\n"
        "from ingestion.transform.dbt_build import DbtWorker, dbt_build, run_dbt\n"
        "assert run_dbt(sys.argv[1], 'parse', '--quiet').success\n"
        "os.environ['DBT_TARGET_PATH'] = sys.argv[2]\n"
        "worker = DbtWorker()\n"
        "worker.parse(sys.argv[1])\n"
        "print(dbt_build(sys.argv[1], '--resource-type', 'seed', worker=worker))\n"
        "worker.close()\n"
    )
    env = {**os.environ, "DBT_TARGET_PATH": str(tmp_path / "parent")}
    done = subprocess.run(
        [sys.executable, "-c", script, stack.warehouse_url, str(tmp_path / "child")],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "BuildSummary(passed=" in done.stdout


def test_a_runs_dbt_log_keeps_each_result_but_not_each_statement(
    stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's build logs at info level to dbt.log (the debug lines cost 0.7 s a build); a
    user's DBT_LOG_LEVEL_FILE still wins."""
    monkeypatch.delenv("DBT_LOG_LEVEL_FILE", raising=False)
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "run"))
    dbt_build(stack.warehouse_url, "--resource-type", "seed")
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "debug"))
    dbt_build(stack.warehouse_url, "--resource-type", "seed")

    run_log = (tmp_path / "run" / "dbt.log").read_text()
    debug_log = (tmp_path / "debug" / "dbt.log").read_text()
    assert "OK loaded seed file reference.iso_4217_currencies" in run_log
    assert "SQL status" not in run_log
    assert "SQL status" in debug_log


def test_a_failed_node_is_told_by_the_database_line_and_the_compiled_sql() -> None:
    # dbt's message for a model that failed in the database, as dbt-postgres 1.11 writes it
    message = (
        "Database Error in model stg_totesys__payment "
        "(models/staging/totesys/stg_totesys__payment.sql)\n"
        "  function pg_input_is_valid(character varying, unknown) does not exist\n"
        "  LINE 32:         and pg_input_is_valid(source.payment_date, '...\n"
        "                       ^\n"
        "  HINT:  No function matches the given name and argument types.\n"
        "  compiled code at target/run/totes/models/staging/totesys/stg_totesys__payment.sql"
    )
    assert failure_detail(message) == (
        "function pg_input_is_valid(character varying, unknown) does not exist",
        "target/run/totes/models/staging/totesys/stg_totesys__payment.sql",
    )
    # a failed test says what it found in one line of its own
    assert failure_detail("Got 3 results, configured to fail if != 0") == (
        "Got 3 results, configured to fail if != 0",
        None,
    )
    assert failure_detail("") == ("", None)
