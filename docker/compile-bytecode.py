"""Compile bytecode for what totes's commands import, and only that (see the Dockerfile).

Importing a module with bytecode writing on leaves its .pyc in __pycache__, and so does each
module it imports: importing the entry points of a run, of dbt's build and of the API compiles
the modules they load at start, about half of the environment's. A module first imported later
in a run is compiled in memory when it is imported, as without this step.
"""

import compileall
import importlib
import sys
from pathlib import Path

ENTRY_POINTS = (
    "ingestion.cli",
    "ingestion.pipeline",
    "ingestion.transform.dbt_build",
    "ingestion.apps.payments_api",
    "dbt.cli.main",
    "dbt.adapters.postgres",
    "dbt.adapters.postgres.impl",
    "dlt.sources.sql_database",
    "dlt.sources.filesystem",
    "dlt.destinations.impl.postgres.postgres",
    "dlt.destinations.impl.filesystem.filesystem",
    "s3fs",
    "boto3",
    "uvicorn",
)

if sys.flags.dont_write_bytecode:
    sys.exit("compile-bytecode: unset PYTHONDONTWRITEBYTECODE, or nothing is written")
for name in ENTRY_POINTS:
    importlib.import_module(name)
# totes itself whole: it is small, and its commands import their modules lazily
ingestion = Path(importlib.import_module("ingestion").__file__).parent
sys.exit(0 if compileall.compile_dir(ingestion, quiet=1) else 1)
