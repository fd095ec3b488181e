"""Continuous mode (`totes run --every SECONDS`): the clock of a long-lived process that runs the
pipeline again and again, how SIGTERM stops it, and what the process holds between runs.

ECS sends SIGTERM to a service's task when it deploys or scales in, and SIGKILL after the task's
stop timeout. SIGTERM only sets a flag: the run in progress stops before its next stage (each
stage has committed its work), and the loop ends. A SIGKILL is a crash, which the next run
recovers like any other.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

POLL_SECONDS = 0.2  # how soon a wait between runs notices a stop


class StopRequest:
    """Set by SIGTERM once `install`ed; read between stages and while waiting for a run."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._received)

    def _received(self, _signal: int, _frame: FrameType | None) -> None:
        # only a flag: a handler may run in the middle of any line, even one writing the log
        self.requested = True

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True at once if a stop is requested."""
        deadline = time.monotonic() + seconds
        while not self.requested and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(POLL_SECONDS, left))
        return self.requested


def run_times(
    every: float, stop: StopRequest, on_late: Callable[[float], None] = lambda _: None
) -> Iterator[None]:
    """Yield when each run is due: at once, then `every` seconds after the previous
    run's start. A run that took longer delays the next, which starts as soon as it ends
    (`on_late` gets by how many seconds); runs never overlap and never bunch up to catch up.
    Ends when a stop is requested."""
    due = time.monotonic()
    while not stop.requested:
        yield
        due += every
        late = time.monotonic() - due
        if late > 0:
            on_late(late)
            due = time.monotonic()
        elif stop.wait(-late):
            return


def held_by(pid: int, prefix: str = "") -> dict[str, float]:
    """What process `pid` holds, from /proc (empty off Linux, or once it ended): resident memory
    in MiB and open file descriptors, which a long-lived loop must not let grow."""
    folder = Path("/proc") / str(pid)
    try:
        rss_pages = int((folder / "statm").read_text().split()[1])
        files = len(os.listdir(folder / "fd"))
    except (OSError, IndexError, ValueError):
        return {}
    rss_mib = round(rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    return {f"{prefix}rss_mib": rss_mib, f"{prefix}open_files": files}
