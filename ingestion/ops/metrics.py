"""Metrics as CloudWatch Embedded Metric Format (EMF) documents, one per log line.

CloudWatch Logs turns each into metrics on arrival, so publishing needs no API call and no
permission beyond writing logs. Namespace `totes`:

| metric | unit | dimensions |
|---|---|---|
| RunSucceeded, RunFailed (1 or 0) | Count | Command |
| RunSeconds | Seconds | Command |
| FreshnessLagSeconds, NewestFactAgeSeconds | Seconds | Command |
| StageSeconds | Seconds | Command, Stage |
| RowsExtracted, RowsLoaded, RowsQuarantined, RowsExported | Count | Table |
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingestion.ops.ledger import FinishedRun

NAMESPACE = "totes"
TABLE_METRICS = {
    "extracted": "RowsExtracted",
    "loaded": "RowsLoaded",
    "quarantined": "RowsQuarantined",
    "exported": "RowsExported",
}


def emf(
    when: datetime,
    dimensions: dict[str, str],
    metrics: dict[str, tuple[float, str]],
    run_id: str,
) -> dict[str, Any]:
    """One EMF document: the metrics' values under one set of dimensions, and the run id as a
    plain property (searchable in the log, not a dimension)."""
    return {
        "_aws": {
            "Timestamp": int(when.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [
                        {"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()
                    ],
                }
            ],
        },
        "run_id": run_id,
        **dimensions,
        **{name: value for name, (value, _) in metrics.items()},
    }


def run_metrics(command: str, run: FinishedRun) -> list[dict[str, Any]]:
    """The EMF documents that describe a finished run."""
    when = run.finished_at
    succeeded = run.status == "succeeded"
    overall: dict[str, tuple[float, str]] = {
        "RunSucceeded": (int(succeeded), "Count"),
        "RunFailed": (int(run.status == "failed"), "Count"),
        "RunSeconds": (run.seconds, "Seconds"),
    }
    if run.freshness_lag_seconds is not None:
        overall["FreshnessLagSeconds"] = (run.freshness_lag_seconds, "Seconds")
    if run.newest_fact_age_seconds is not None:
        overall["NewestFactAgeSeconds"] = (run.newest_fact_age_seconds, "Seconds")
    documents = [emf(when, {"Command": command}, overall, run.run_id)]
    documents += [
        emf(
            when,
            {"Command": command, "Stage": stage},
            {"StageSeconds": (seconds, "Seconds")},
            run.run_id,
        )
        for stage, seconds in run.stage_seconds.items()
    ]
    for table, row in run.tables.items():
        counts = {
            metric: (getattr(row, column), "Count") for column, metric in TABLE_METRICS.items()
        }
        documents.append(emf(when, {"Table": table}, counts, run.run_id))
    return documents
