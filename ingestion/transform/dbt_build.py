"""Transform: `dbt build` (seeds, models, data tests) against the warehouse.

profiles.yml reads TOTES_WAREHOUSE_URL, so totes runs dbt exactly as a user would from the CLI.

`totes run` starts dbt's process before anything else (`started_dbt`): the child imports dbt
(3 s of CPU) and, once the run holds its lock, parses the project (1.5 s), on the second core
while the run starts, extracts and loads on the first; then it builds when the run asks. On
Linux the kernel kills that child when the run's process dies, even by SIGKILL, so a killed run
never leaves a build behind it. Elsewhere, and for a `pipeline.run` given no DbtWorker, dbt
runs in-process.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion.errors import TotesError
from ingestion.ops.log import log_format
from ingestion.ops.run_events import NodeResult

if TYPE_CHECKING:  # dbt takes 3 s to import: only where it runs
    from dbt.cli.main import dbtRunnerResult

PROJECT_DIR = Path(__file__).resolve().parents[2]
PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a process gets when its parent dies
# Unit tests belong to CI: they need their parents built, and prove logic, not data.
# --no-write-json: the run keeps the results itself (ledger); rewriting manifest.json and
# run_results.json costs every run half a second
BUILD = ("build", "--exclude-resource-type", "unit_test", "--quiet", "--no-write-json")
# A run's dbt.log keeps dbt's info lines (each node's start, result and error) but not every SQL
# statement: those debug lines cost a build 0.7 s of CPU (dbt stage at scale 1, median of five
# runs each: 5.5 s against 4.8 s) and 3 MB of log. DBT_LOG_LEVEL_FILE=debug brings them back.
FILE_LOG_LEVEL = "info"


@dataclass(frozen=True)
class BuildSummary:
    passed: int
    warned: int


@dataclass(frozen=True)
class BuildOutcome:
    """What a build did, in a form that crosses a process boundary."""

    nodes: list[NodeResult]
    failed: list[str]  # "<model or test>: <first line of its message>"
    success: bool
    error: str | None  # dbt could not run at all


def run_dbt(
    warehouse_url: str, *args: str, project_dir: Path = PROJECT_DIR, manifest: Any = None
) -> dbtRunnerResult:
    """Invoke one dbt command (`run_dbt(url, "test", "--select", ...)`) on this project;
    `manifest`, a parsed project, spares dbt parsing it again."""
    from dbt.cli.main import dbtRunner

    with _environment(TOTES_WAREHOUSE_URL=warehouse_url, DO_NOT_TRACK="1"):
        return dbtRunner(manifest=manifest).invoke(
            [*args, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
        )


def dbt_build(
    warehouse_url: str,
    *args: str,
    on_nodes: Callable[[list[NodeResult]], None] = lambda _: None,
    worker: DbtWorker | None = None,
) -> BuildSummary:
    """Run `dbt build` without unit tests (on `worker`, if given); raise naming every failed
    model or test. `on_nodes` gets every node's result first, also when the build failed."""
    outcome = worker.build(warehouse_url, *args) if worker else _build(warehouse_url, args)
    if outcome.error is not None:
        raise TotesError(f"dbt build could not run: {outcome.error}")
    on_nodes(outcome.nodes)
    if outcome.failed or not outcome.success:
        details = "; ".join(outcome.failed) or "see the dbt log above"
        raise TotesError(f"dbt build failed: {details}")
    warned = sum(1 for n in outcome.nodes if n.status == "warn")
    return BuildSummary(passed=len(outcome.nodes) - warned, warned=warned)


def _build(warehouse_url: str, args: tuple[str, ...], manifest: Any = None) -> BuildOutcome:
    file_log = () if "DBT_LOG_LEVEL_FILE" in os.environ else ("--log-level-file", FILE_LOG_LEVEL)
    # a JSON log is JSON objects only: dbt's console lines (its errors, which --quiet keeps)
    # are not, and the run's own error line names each failed node and its database error
    console = ("--log-level", "none") if log_format(os.environ) == "json" else ()
    result = run_dbt(warehouse_url, *BUILD, *file_log, *console, *args, manifest=manifest)
    if result.exception is not None:
        return BuildOutcome([], [], False, str(result.exception))
    nodes, failed = [], []
    for done in result.result or []:
        reason, compiled = failure_detail(done.message or "")
        node = NodeResult(
            unique_id=done.node.unique_id,
            resource_type=str(done.node.resource_type),
            status=str(done.status),
            seconds=float(done.execution_time or 0),
            failures=done.failures,
            message=reason,
        )
        nodes.append(node)
        if node.status in ("error", "fail"):
            failed.append(_failed_node(done.node, reason, compiled))
    return BuildOutcome(nodes, failed, bool(result.success), None)


def _failed_node(node: Any, reason: str, compiled: str | None) -> str:
    """`<node>: <reason> (compiled SQL: <path>)`, as the run's error names a failed node."""
    path = compiled or getattr(node, "compiled_path", None)  # dbt's paths are the project's
    return f"{node.name}: {reason}" + (f" (compiled SQL: {PROJECT_DIR / path})" if path else "")


# dbt's message for a node that failed in the database: a header naming the node, the
# database's own lines (indented), and where the SQL it ran was written
ERROR_HEADER = re.compile(r"^(Database|Compilation|Runtime|Parsing) Error in ")
COMPILED_AT = "compiled code at "


def failure_detail(message: str) -> tuple[str, str | None]:
    """(the first line that says what failed, the path of the compiled SQL or None) of a dbt
    node's message: for a database error the database's own first line (`function ... does
    not exist`), not dbt's header, which only names the node again."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    compiled = next(
        (line[len(COMPILED_AT) :] for line in lines if line.startswith(COMPILED_AT)), None
    )
    said = [line for line in lines if not line.startswith(COMPILED_AT)]
    if len(said) > 1 and ERROR_HEADER.match(said[0]):
        said = said[1:]
    return (said[0] if said else ""), compiled


class DbtWorker:
    """dbt in a child process: it imports dbt at once, parses the project when asked
    (`parse`), then builds on that parse (`build`). `close` ends it. One worker serves the
    runs of a long-lived loop; a worker that died (out of memory) is replaced at the next
    `parse`, so one lost build fails only its own run."""

    def __init__(self) -> None:
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("fork")  # inherits what the run has imported
        self._requests, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(child_end, self._requests, os.getpid()),
            name="dbt",
            daemon=True,
        )
        self._process.start()
        child_end.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def parse(self, warehouse_url: str) -> None:
        """Start parsing the project; returns at once. A build without it parses first."""
        if not self._process.is_alive():
            self.close()
            self._start()
        self._send(("parse", warehouse_url))

    def build(self, warehouse_url: str, *args: str) -> BuildOutcome:
        self._send(("build", warehouse_url, args))
        try:
            outcome: BuildOutcome = self._requests.recv()
        except (EOFError, OSError) as error:
            raise self._ended() from error
        return outcome

    def close(self) -> None:
        self._requests.close()  # the child reads end-of-file and exits
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._process.close()  # its sentinel's file descriptor: a loop replaces workers

    def _send(self, request: tuple[Any, ...]) -> None:
        try:
            self._requests.send(request)
        except OSError as error:  # the child is gone: its end of the pipe is closed
            raise self._ended() from error

    def _ended(self) -> TotesError:
        self._process.join(timeout=5)
        return TotesError(
            f"the dbt process ended during the run (exit code {self._process.exitcode})"
        )


@contextmanager
def started_dbt() -> Iterator[DbtWorker | None]:
    """A DbtWorker until the end of the block, on Linux; None (dbt in-process) elsewhere."""
    if not sys.platform.startswith("linux"):
        yield None
        return
    worker = DbtWorker()
    try:
        yield worker
    finally:
        worker.close()


def _serve(requests: Connection, runs_end: Connection, parent: int) -> None:
    """The child: import dbt, then answer requests until the run closes the pipe."""
    runs_end.close()  # the fork's copy: the run's own closing must reach this process as EOF
    # what the fork copied is never collected here, so no collection walks it again (in a large
    # parent, 0.6-0.8 s of CPU a build)
    gc.freeze()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the run died before prctl took effect
        os._exit(1)
    # dbt's static parser runs on a Rust (rayon) thread pool, and a fork copies the pool without
    # its threads: after a parent had parsed in-process, parsing here waited forever. Jinja
    # parses the same models (a full parse took as long either way; partial parses stay valid)
    os.environ["DBT_STATIC_PARSER"] = "false"
    try:
        import dbt.cli.main  # noqa: F401  (the 3 s this process exists for)

        manifest = None
        while True:
            try:
                request = requests.recv()
            except EOFError:
                return
            if request[0] == "parse":
                parsed = run_dbt(request[1], "parse", "--quiet", "--no-write-json")
                # a project that does not parse: the build parses it again and says why
                manifest = parsed.result if parsed.success else None
            else:
                _, warehouse_url, args = request
                requests.send(_build(warehouse_url, args, manifest))
                # a parse serves one build: dbt keeps per-build state in it (the graph)
                manifest = None
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the run reports it
        return


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
