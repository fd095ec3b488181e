"""Log lines: one JSON object per line on stdout (ECS ships stdout to CloudWatch Logs), or
readable text on a terminal. TOTES_LOG_FORMAT=json|text chooses; the default is text on a TTY.

Every line is scrubbed of the passwords in the configured URLs before it is written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TextIO

from ingestion.errors import ConfigError

FORMATS = ("json", "text")


def table_counts(counts: Mapping[str, int]) -> str:
    """`sales_order 137, payment 500`: rows per table, for text lines."""
    return ", ".join(f"{table} {rows:,}" for table, rows in counts.items()) or "no new rows"


def log_format(environ: Mapping[str, str], stream: TextIO = sys.stdout) -> str:
    chosen = environ.get("TOTES_LOG_FORMAT") or ("text" if stream.isatty() else "json")
    if chosen not in FORMATS:
        raise ConfigError(f"TOTES_LOG_FORMAT must be json or text, got {chosen!r}")
    return chosen


@dataclass(frozen=True)
class Log:
    """Writes events with a context (run_id, command, stage ...) that `bind` extends."""

    format: str
    scrub: Callable[[str], str] = lambda text: text
    context: Mapping[str, Any] = field(default_factory=dict)
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def bind(self, **context: Any) -> Log:
        return replace(self, context={**self.context, **context})

    def info(self, message: str, text: str | None = None, **fields: Any) -> None:
        """`text` replaces the message in the text form; "" prints nothing there (JSON only)."""
        self._write("info", message, fields, text)

    def warning(self, message: str, **fields: Any) -> None:
        self._write("warning", message, fields, f"totes: warning: {message}")

    def retrying(self, message: str, **fields: Any) -> None:
        self._write("warning", message, {"retrying": True, **fields}, f"totes: retrying: {message}")

    def error(self, message: str, **fields: Any) -> None:
        self._write("error", message, fields, f"totes: error: {message}")

    def metric(self, document: Mapping[str, Any]) -> None:
        """A CloudWatch Embedded Metric Format document: JSON only (CloudWatch reads it)."""
        if self.format == "json":
            self._print_json(document)

    def _write(self, level: str, message: str, fields: Mapping[str, Any], text: str | None) -> None:
        if self.format == "json":
            now = datetime.now(UTC).isoformat(timespec="milliseconds")
            self._print_json(
                {"time": now, "level": level, **self.context, "message": message, **fields}
            )
        elif text != "":
            line = self.scrub(message if text is None else text)
            print(line, file=self.out if level == "info" else self.err, flush=True)

    def _print_json(self, record: Mapping[str, Any]) -> None:
        print(json.dumps(self._scrubbed(record), default=str), file=self.out, flush=True)

    def _scrubbed(self, value: Any) -> Any:
        """Passwords masked in every string, before JSON escaping could disguise them."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {key: self._scrubbed(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrubbed(item) for item in value]
        return value
