"""Transform: `dbt build` (seeds, models, data tests) in-process, against the warehouse.

profiles.yml reads TOTES_WAREHOUSE_URL, so totes runs dbt exactly as a user would from the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dbt.cli.main import dbtRunner, dbtRunnerResult

from ingestion.errors import TotesError
from ingestion.run_events import NodeResult

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BuildSummary:
    passed: int
    warned: int


def run_dbt(warehouse_url: str, *args: str, project_dir: Path = PROJECT_DIR) -> dbtRunnerResult:
    """Invoke one dbt command (`run_dbt(url, "test", "--select", ...)`) on this project."""
    with _environment(TOTES_WAREHOUSE_URL=warehouse_url, DO_NOT_TRACK="1"):
        return dbtRunner().invoke(
            [*args, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
        )


def dbt_build(
    warehouse_url: str,
    *args: str,
    on_nodes: Callable[[list[NodeResult]], None] = lambda _: None,
) -> BuildSummary:
    """Run `dbt build` without unit tests; raise naming every failed model or test. `on_nodes`
    gets every node's result first, also when the build failed.

    Unit tests belong to CI: they need their parents built, and prove logic, not data.
    """
    # --no-write-json: the run keeps the results itself (ledger); rewriting manifest.json and
    # run_results.json costs every run half a second
    result = run_dbt(
        warehouse_url,
        "build", "--exclude-resource-type", "unit_test", "--quiet", "--no-write-json", *args,
    )  # fmt: skip
    if result.exception is not None:
        raise TotesError(f"dbt build could not run: {result.exception}")
    nodes = list(result.result or [])
    on_nodes(
        [
            NodeResult(
                unique_id=n.node.unique_id,
                resource_type=str(n.node.resource_type),
                status=str(n.status),
                seconds=float(n.execution_time or 0),
                failures=n.failures,
                message=(n.message or "").splitlines()[0] if n.message else "",
            )
            for n in nodes
        ]
    )
    failed = [n for n in nodes if str(n.status) in ("error", "fail")]
    if failed or not result.success:
        details = "; ".join(f"{n.node.name}: {(n.message or '').splitlines()[0]}" for n in failed)
        raise TotesError(f"dbt build failed: {details or 'see the dbt log above'}")
    warned = sum(1 for n in nodes if str(n.status) == "warn")
    return BuildSummary(passed=len(nodes) - warned, warned=warned)


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
