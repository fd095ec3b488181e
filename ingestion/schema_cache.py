"""dbt's JSON schemas, kept on disk between processes.

dbt checks dbt_project.yml, profiles.yml and the configs it reads against JSON schemas that
mashumaro builds from dbt's dataclasses, again in every process: half a second of each parse
(0.5 to 0.6 s of a 1.5 to 1.9 s partial parse at scale 1), for schemas that change only with
dbt's code. `enable` makes dbt read each schema from a file once one process has built it,
keyed on the class and on the versions of the packages that define it. Only totes' dbt processes
use it (`ingestion.transform.run_dbt`), beside `ingestion.jinja_cache`.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from contextlib import suppress
from hashlib import sha256
from importlib.metadata import version
from pathlib import Path
from typing import Any

# the code a schema is built from: the classes (dbt's packages) and the builder (mashumaro)
PACKAGES = ("dbt-core", "dbt-common", "dbt-adapters", "dbt-postgres", "mashumaro")
_folder: Path | None = None  # where this process keeps schemas now


def enable(directory: Path) -> None:
    """Keep the schemas dbt builds in this process under `directory`, from now on. A folder
    that cannot be written means no caching, not an error."""
    global _folder
    _folder = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    _route_dbt_schemas()
    _folder = directory


@functools.cache
def _route_dbt_schemas() -> None:
    from dbt_common.dataclass_schema import dbtClassMixin

    build = dbtClassMixin.json_schema.__func__  # type: ignore[attr-defined]
    versions = tuple(version(name) for name in PACKAGES)

    @functools.cache  # as dbt's own: one lookup per class and process
    def json_schema(cls: type) -> dict[str, Any]:
        folder = _folder
        if folder is None:
            return build(cls)  # type: ignore[no-any-return]
        key = sha256(repr((versions, cls.__module__, cls.__qualname__)).encode()).hexdigest()
        path = folder / f"{key[:32]}.json"
        with suppress(OSError, ValueError):  # none yet, or one cut short: built again
            return json.loads(path.read_bytes())  # type: ignore[no-any-return]
        schema: dict[str, Any] = build(cls)
        with suppress(OSError):  # and one that cannot be written is not kept
            # one temporary file per process and thread: a rename then publishes a whole one
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            temporary.write_text(json.dumps(schema))
            temporary.replace(path)  # a reader sees a whole schema or none
        return schema

    dbtClassMixin.json_schema = classmethod(json_schema)  # type: ignore[assignment,method-assign]
