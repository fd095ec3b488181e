"""One change to dlt's defaults, for every pipeline here: how often its load step looks for
finished jobs. dlt (1.31) waits up to a second between looks, and a run of totes has three
pipelines with a few jobs each, so a run spent seconds waiting for jobs that had already
finished (measured: the FX stage 1.7 s -> 0.7 s, the extract 2.2 s -> 1.7 s). dlt has no
setting for it, so the attribute its loader reads is set after dlt's own __init__."""

from __future__ import annotations

from typing import Any

from dlt.load.load import Load

LOAD_POLL_SECONDS = 0.02

_dlt_init = Load.__init__


def _init_polling_often(self: Load, *args: Any, **kwargs: Any) -> None:
    _dlt_init(self, *args, **kwargs)
    self._run_loop_sleep_duration = LOAD_POLL_SECONDS


if getattr(Load.__init__, "__name__", "") != _init_polling_often.__name__:
    Load.__init__ = _init_polling_often  # type: ignore[method-assign]
