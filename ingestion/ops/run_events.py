"""What a run reports as it goes, and when it is done. No heavy imports here: the CLI and the
run monitor use these types before dbt and dlt are loaded."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StageResult:
    name: str
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)
    detail: str = ""


@dataclass
class RunReport:
    stages: list[StageResult] = field(default_factory=list)

    def stage(self, name: str) -> StageResult:
        return next(s for s in self.stages if s.name == name)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


@dataclass(frozen=True)
class NodeResult:
    """One model, seed or test of a dbt build, as the run ledger keeps it."""

    unique_id: str
    resource_type: str
    status: str
    seconds: float
    failures: int | None
    message: str


class RunEvents:
    """What a run tells its caller as it goes (the CLI logs it, the ledger records it). This
    base class ignores everything."""

    def stage_started(self, name: str) -> None: ...

    def stage_finished(self, result: StageResult) -> None: ...

    def retrying(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def dbt_nodes(self, nodes: list[NodeResult]) -> None:
        """Every model, seed and test dbt ran, with its status and time (also on failure)."""

    def stop_requested(self) -> bool:
        """Whether the run should stop before its next stage (SIGTERM asked it to)."""
        return False
