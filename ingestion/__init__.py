"""totes: totesys -> parquet lake -> star-schema warehouse -> processed parquet.

The folders follow a run (`pipeline`, started by `cli`): extract -> lake -> load -> transform ->
export. `ops` watches the runs, `apps` serve the warehouse, `local` is the demo's stack, and
`common` holds what every stage uses.
"""

import os
from pathlib import Path

# No usage telemetry from the libraries we drive, whichever entry point imports us first.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# SIGTERM is totes's to handle (it stops a run between two stages, see continuous.py); dlt would
# otherwise take it over during its own steps and stop a stage half-way
os.environ.setdefault("RUNTIME__INTERCEPT_SIGNALS", "false")
# dlt's settings folder: totes's own, with an empty secrets.toml (see the file for why)
os.environ.setdefault("DLT_PROJECT_DIR", str(Path(__file__).with_name("dlt_project")))
