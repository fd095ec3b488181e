"""dbt's compiled Jinja, kept on disk between processes.

Every dbt process compiles the same templates again: its macros, ours, and each model's SQL.
That is a fifth of a build's CPU at scale 1 (about 1 s of 5). Jinja keeps compiled templates
only for loader-based environments, and dbt compiles from strings, so `enable` routes dbt's
`compile` through Jinja's own file cache, keyed on the source and on everything else the
compiled code depends on. Only totes' dbt processes use it (`ingestion.transform.run_dbt`).

The cache lives in dbt's target folder (`dbt clean` empties it). Whoever can write there can
put code in a dbt process, as with Python's __pycache__.
"""

from __future__ import annotations

import functools
import os
from contextlib import suppress
from hashlib import sha256
from importlib.metadata import version
from pathlib import Path
from typing import Any

from jinja2 import Environment
from jinja2.bccache import Bucket, FileSystemBytecodeCache

# a dbt upgrade orphans every entry: past this many files the cache starts again
MAX_ENTRIES = 3000
_files: FileSystemBytecodeCache | None = None  # where this process caches now


def enable(directory: Path) -> None:
    """Cache the templates dbt compiles in this process under `directory`, from now on. A
    folder that cannot be written means no caching, not an error."""
    global _files
    _files = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        files = FileSystemBytecodeCache(str(directory))
        with os.scandir(directory) as entries:
            if sum(1 for _ in entries) > MAX_ENTRIES:
                files.clear()
    except OSError:
        return
    _route_dbt_compile()
    _files = files


@functools.cache
def _route_dbt_compile() -> None:
    from dbt_common.clients import jinja as dbt_jinja

    environments = dbt_jinja.MacroFuzzEnvironment  # the base of both of dbt's environments
    compile_afresh = environments.compile
    versions = tuple(version(name) for name in ("jinja2", "dbt-common", "dbt-core"))

    def compile_cached(
        self: Environment,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        files = _files
        # dbt's macro debugging (DBT_MACRO_DEBUGGING) compiles each template under a name of its own
        if files is None or raw or not isinstance(source, str) or dbt_jinja.MACRO_DEBUGGING:
            return compile_afresh(self, source, name, filename, raw, defer_init)
        key = sha256(repr((versions, _settings(self), name, filename, defer_init)).encode())
        key.update(source.encode())
        bucket = Bucket(self, key.hexdigest(), files.get_source_checksum(source))
        try:
            files.load_bytecode(bucket)
        except Exception:  # an entry cut short (pickle or marshal fails) is compiled again
            bucket.reset()
        if bucket.code is None:
            bucket.code = compile_afresh(self, source, name, filename, raw, defer_init)
            with suppress(OSError):  # and one that cannot be written is not kept
                files.dump_bytecode(bucket)
        return bucket.code

    environments.compile = compile_cached  # type: ignore[assignment,method-assign]


def _settings(environment: Environment) -> tuple[Any, ...]:
    """What Jinja's code generation reads from an environment, besides the source. (Jinja's
    own magic number, in each entry, covers the Python version.)"""
    return (
        type(environment).__module__,
        type(environment).__qualname__,
        sorted(environment.extensions),
        sorted(environment.filters),  # constant folding may call a filter while compiling
        sorted(environment.tests),
        environment.optimized,
        environment.autoescape,
        environment.finalize,
        environment.is_async,
        # the lexer's settings (Jinja keys its own lexer cache on these)
        environment.block_start_string,
        environment.block_end_string,
        environment.variable_start_string,
        environment.variable_end_string,
        environment.comment_start_string,
        environment.comment_end_string,
        environment.line_statement_prefix,
        environment.line_comment_prefix,
        environment.trim_blocks,
        environment.lstrip_blocks,
        environment.newline_sequence,
        environment.keep_trailing_newline,
    )
