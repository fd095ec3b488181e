"""Alerts: one short SNS message when a run fails or the warehouse falls behind its SLA.

Sent only when TOTES_ALERT_TOPIC_ARN is set. The same alert (same kind, stage and error, with
numbers ignored) goes out at most once per REPEAT_AFTER; the next one says how many were held
back. That memory lives in the lake (`<lake>/_ops/alerts.json`), not in the warehouse, so
that it still works when the warehouse is what is down.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ingestion.lake.storage import filesystem, read_json, write_json_atomically

REPEAT_AFTER = timedelta(hours=1)
STATE_FILE = "_ops/alerts.json"


@dataclass(frozen=True)
class Alert:
    subject: str  # SNS keeps 100 characters
    body: str
    key: str  # what makes two alerts "the same"


def failure_alert(
    command: str, run_id: str, stage: str | None, tables: list[str], error: str, where: str
) -> Alert:
    at = f"the {stage} stage" if stage else "start-up"
    on = f" (tables: {', '.join(tables)})" if tables else ""
    return Alert(
        subject=f"totes {command} failed at {at}"[:100],
        body=f"totes {command} failed at {at}{on}.\n\nError: {error}\n\nRun id: {run_id}\n{where}",
        key=f"failure|{command}|{stage}|{re.sub(r'[0-9]+', '#', error)}",
    )


def freshness_alert(run_id: str, behind: dict[str, float], sla_minutes: int, where: str) -> Alert:
    worst = max(behind.values()) / 60
    tables = ", ".join(f"{table} {seconds / 60:.0f} min" for table, seconds in behind.items())
    return Alert(
        subject=f"totes freshness breach: warehouse {worst:.0f} min behind (SLA {sla_minutes})",
        body=(
            f"The warehouse is more than {sla_minutes} minutes behind the source.\n\n"
            f"Behind: {tables}\n\nRun id: {run_id}\n{where}"
        ),
        key="freshness",
    )


class Alerts:
    def __init__(self, topic_arn: str, lake_url: str) -> None:
        self.topic_arn = topic_arn
        self.fs, root = filesystem(lake_url)
        self.state_path = f"{root}/{STATE_FILE}"

    def send(self, alert: Alert, now: datetime) -> bool:
        """Publish unless the same alert went out less than REPEAT_AFTER ago. True if sent."""
        import boto3

        state = self._state()
        key = hashlib.sha256(alert.key.encode()).hexdigest()[:16]
        last = state.get(key)
        if last and now - datetime.fromisoformat(last["sent_at"]) < REPEAT_AFTER:
            last["held_back"] += 1
            self._save(state)
            return False
        body = alert.body
        if last and last["held_back"]:
            body += (
                f"\n\nThe same alert was held back {last['held_back']} times "
                f"since {last['sent_at']} (one per {REPEAT_AFTER})."
            )
        boto3.client("sns").publish(TopicArn=self.topic_arn, Subject=alert.subject, Message=body)
        state[key] = {"sent_at": now.isoformat(), "held_back": 0, "subject": alert.subject}
        self._save(state)
        return True

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = read_json(self.fs, self.state_path) or {}
        return state

    def _save(self, state: dict[str, Any]) -> None:
        write_json_atomically(self.fs, self.state_path, state)
