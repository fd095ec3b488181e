"""totes: totesys -> parquet lake -> star-schema warehouse -> processed parquet."""

import os

# No usage telemetry from the libraries we drive, whichever entry point imports us first.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
