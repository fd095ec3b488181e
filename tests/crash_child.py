"""`totes run` with one kill point armed: SIGKILL it just before the Nth call of a function.

A kill point is `module:Qualified.name:N`. The crash harness asks `KillableRuns` for each killed
run. It starts `python -m tests.crash_child` once, with the stack's settings in its environment.
That process imports totes (with dbt and dlt) and then forks a child per killed run. Each child
is a real, separate process with its own connections and files, killed by SIGKILL as the OOM
killer or a stopped ECS task would kill it. Forking spares each run the 4 s of imports; the kill
point is armed in that child only. The run's dbt process (forked by the run, so armed too) is
killed with it: a kill point SIGKILLs the run's whole process group, as stopping the container
would.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

TIMED_OUT = 124  # the returncode of a run still going after `timeout` seconds (it is killed)


def arm(kill_at: str) -> None:
    module_name, qualified_name, nth = kill_at.split(":")
    owner: Any = importlib.import_module(module_name)
    *parents, name = qualified_name.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original: Callable[..., Any] = getattr(owner, name)
    calls = 0

    @functools.wraps(original)
    def killing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == int(nth):
            os.killpg(os.getpgrp(), signal.SIGKILL)  # the run and its dbt process
        return original(*args, **kwargs)

    setattr(owner, name, killing)


class KillableRuns:
    """The fork server, for a `with` block: `runs.killed(kill_at)` runs `totes run` in a new child
    (with the server's `env` and `cwd`) and `kill_at` armed, and returns how it ended. Given
    `env`, the run has that environment instead: one server serves several stacks."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.server = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=cwd, text=True,
        )  # fmt: skip

    def killed(
        self, kill_at: str, timeout: float = 600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        request = {"kill_at": kill_at, "timeout": timeout, "env": env}
        stdin, stdout = self._pipes()
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        answer = stdout.readline()
        if not answer:
            raise RuntimeError(f"the crash child server exited with {self.server.wait()}")
        ended = json.loads(answer)
        return subprocess.CompletedProcess(
            ["totes", "run", kill_at], ended["returncode"], ended["output"], ""
        )

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self.server.stdin is not None and self.server.stdout is not None
        return self.server.stdin, self.server.stdout

    def __enter__(self) -> KillableRuns:
        return self

    def __exit__(self, *_: object) -> None:
        self._pipes()[0].close()  # the server ends at the end of its input
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # left mid-run by a failing test: stop it
            self.server.kill()
            self.server.wait()


def serve() -> None:
    """Answer each request line on stdin with how its killed run ended, as a line on stdout."""
    # imported once, inherited by every child (dbt too, which a run imports in its dbt process)
    import dbt.cli.main  # noqa: F401

    from ingestion import cli, pipeline  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        returncode, output = _fork_run(**request)
        print(json.dumps({"returncode": returncode, "output": output}), flush=True)


def _fork_run(kill_at: str, timeout: float, env: dict[str, str] | None) -> tuple[int, str]:
    # a fork copies only the calling thread: a lock another thread held would stay locked
    if threading.active_count() != 1:
        raise RuntimeError(f"cannot fork with threads running: {threading.enumerate()}")
    with tempfile.TemporaryFile() as output:
        pid = os.fork()
        if pid == 0:
            _run_in_child(kill_at, output.fileno(), env)
        deadline = time.monotonic() + timeout
        while (ended := os.waitpid(pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return TIMED_OUT, f"still running after {timeout} s"
            time.sleep(0.05)
        output.seek(0)
        return os.waitstatus_to_exitcode(ended[1]), output.read().decode(errors="replace")


def _run_in_child(kill_at: str, output: int, env: dict[str, str] | None) -> None:
    code = 1
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        os.setpgid(0, 0)  # a group of its own: a kill point kills this run, not the server
        os.dup2(output, 1)
        os.dup2(output, 2)
        arm(kill_at)
        from ingestion.cli import main

        sys.argv = ["totes", "run"]
        main()
        code = 0
    except SystemExit as stop:
        code = 0 if stop.code is None else stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    serve()
