"""Progress for long work (initial loads, rebuilds, large sources): bars on a terminal, and
nothing at all otherwise, where the structured log lines say what happened."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def on_terminal() -> bool:
    return sys.stderr.isatty()


def progress_bars() -> str | None:
    """dlt's progress option: tqdm bars per table (rows and rate) on a terminal, else none."""
    return "tqdm" if on_terminal() else None


def rows_progress(total: int, what: str) -> Any:
    """A rows counter with a rate, on a terminal only: call .update(n) and .set_postfix_str."""
    return tqdm(total=total, desc=what, unit=" rows", unit_scale=True, disable=not on_terminal())
