"""`totes` with one kill point armed: SIGKILL this process just before the Nth call of a function.

Used by the crash harness as `python -m tests.crash_child run`, with TOTES_KILL_AT set to
`module:Qualified.name:N`. It wraps the function in this (real, separate) process only.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any


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
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, name, killing)


if __name__ == "__main__":
    arm(os.environ["TOTES_KILL_AT"])
    from ingestion.cli import main

    sys.argv[0] = "totes"
    main()
