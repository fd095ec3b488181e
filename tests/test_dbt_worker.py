"""The run's dbt process (ingestion.transform.DbtWorker): it builds what an in-process dbt would
(every pipeline test runs through it), and it never outlives the run that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingestion.config import Settings
from ingestion.errors import TotesError
from ingestion.transform import DbtWorker, dbt_build, started_dbt

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
        "from ingestion.transform import DbtWorker\n"
        "worker = DbtWorker(sys.argv[1])\n"
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


def test_a_run_that_fails_before_dbt_ends_its_dbt_process(stack: Settings) -> None:
    with (
        pytest.raises(RuntimeError, match="extract failed"),
        started_dbt(stack.warehouse_url) as worker,
    ):
        assert worker is not None and worker.pid is not None
        pid = worker.pid
        raise RuntimeError("extract failed")
    assert wait_until_gone(pid)


def test_a_dbt_process_that_died_fails_the_build_clearly(stack: Settings) -> None:
    worker = DbtWorker(stack.warehouse_url)
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    try:
        with pytest.raises(
            TotesError, match=r"the dbt process ended during the build \(exit code -9\)"
        ):
            dbt_build(stack.warehouse_url, worker=worker)
    finally:
        worker.close()
