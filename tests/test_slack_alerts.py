"""Slack alerts: the Lambda subscribed to the alert topic (ingestion/ops/slack.py) posts each SNS
message to a Slack incoming webhook.

The real handler runs against a local HTTP server standing in for Slack, which records what it
is sent and answers as told, and against moto's Secrets Manager (the session's moto server, over
HTTP), which holds the webhook URL. Each test starts as a fresh Lambda container."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from ingestion.ops import slack
from ingestion.ops.alerts import failure_alert
from tests.conftest import S3, free_port


@dataclass
class Slack:
    """The stand-in: every POST it received, and the status it answers with."""

    url: str  # the webhook URL, whose path is the secret part, as Slack's
    token: str
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)

    def texts(self) -> list[str]:
        return [message["text"] for message in self.received]


@pytest.fixture
def stub() -> Iterator[Slack]:
    token = secrets.token_hex(12)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    stub = Slack(f"http://127.0.0.1:{server.server_port}/services/T0TES/B0TES/{token}", token)

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            assert self.headers["Content-Type"] == "application/json"
            stub.received.append(json.loads(body))
            # a failing answer quotes the path, so that the subscriber has to keep it out
            answer = b"ok" if stub.status < 300 else f"no_service: {self.path}".encode()
            self.send_response(stub.status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # http.server logs every path to stderr, and the path is the secret

    server.RequestHandlerClass = Webhook
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()


@pytest.fixture
def container(s3: S3, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh Lambda container whose TOTES_SLACK_WEBHOOK_SECRET names an empty secret in
    moto's Secrets Manager. Yields the secret's ARN."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", s3.endpoint)
    name = f"totes/slack-webhook-url-{secrets.token_hex(4)}"
    arn = boto3.client("secretsmanager").create_secret(Name=name)["ARN"]
    monkeypatch.setenv(slack.SECRET_VARIABLE, arn)
    monkeypatch.setattr(slack, "_subscriber", None)
    yield arn


@pytest.fixture
def webhook(container: str, stub: Slack) -> Slack:
    """The container's secret holds the stand-in's URL (as the operator puts it, with a
    newline)."""
    boto3.client("secretsmanager").put_secret_value(
        SecretId=container, SecretString=stub.url + "\n"
    )
    return stub


def sns_event(
    message: str, subject: str | None = None, message_id: str | None = None
) -> dict[str, Any]:
    """An SNS event as Lambda receives it from the topic."""
    topic = "arn:aws:sns:eu-west-2:111111111111:totes-alerts"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:0b1c2d3e",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id or secrets.token_hex(16),
                    "TopicArn": topic,
                    "Subject": subject,
                    "Message": message,
                    "Timestamp": "2025-01-06T09:15:00.000Z",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def test_a_task_alert_reaches_slack_as_its_subject_and_body(webhook: Slack) -> None:
    alert = failure_alert(
        "run",
        "r-42",
        "load",
        ["payment"],
        'relation "payment" does not exist',
        "Where to look: the log lines with run_id r-42 in log group /ecs/totes.",
    )
    assert slack.handler(sns_event(alert.body, alert.subject), None) == {"sent": 1, "skipped": 0}
    (text,) = webhook.texts()
    assert text == (
        "*totes run failed at the load stage*\n"
        "totes run failed at the load stage (tables: payment).\n\n"
        'Error: relation "payment" does not exist\n\n'
        "Run id: r-42\n"
        "Where to look: the log lines with run_id r-42 in log group /ecs/totes."
    )


def test_a_cloudwatch_alarm_reads_as_its_name_state_and_reason(webhook: Slack) -> None:
    alarm = {
        "AlarmName": "totes-freshness",
        "AlarmDescription": "For 15 minutes, every run reported the warehouse more than 30 "
        "minutes behind totesys, or no run reported at all.",
        "AWSAccountId": "111111111111",
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 3 datapoints [2400.0 (06/01/25 09:10:00), "
        "2100.0 (06/01/25 09:05:00)] were greater than the threshold (1800.0).",
        "StateChangeTime": "2025-01-06T09:15:00.000+0000",
        "Region": "EU (London)",
        "OldStateValue": "OK",
        "Trigger": {"MetricName": "FreshnessLagSeconds", "Namespace": "totes"},
    }
    subject = 'ALARM: "totes-freshness" in EU (London)'
    slack.handler(sns_event(json.dumps(alarm), subject), None)
    ok = {**alarm, "NewStateValue": "OK", "NewStateReason": "Threshold Crossed: 1 datapoint."}
    slack.handler(sns_event(json.dumps(ok), subject.replace("ALARM", "OK")), None)
    assert webhook.texts() == [
        ":red_circle: *totes-freshness* is ALARM\n"
        f"{alarm['NewStateReason']}\n"
        f"_{alarm['AlarmDescription']}_",
        ":large_green_circle: *totes-freshness* is OK\nThreshold Crossed: 1 datapoint.",
    ]


def test_the_failed_task_rules_message_is_its_text_escaped_for_slack(webhook: Slack) -> None:
    # the rule's input template makes the message a JSON string, and SNS gives it no subject
    message = json.dumps("totes task arn:aws:ecs:task/1 stopped (exit code 137): <OutOfMemory>")
    slack.handler(sns_event(message), None)
    assert webhook.texts() == [
        "*totes alert*\ntotes task arn:aws:ecs:task/1 stopped (exit code 137): &lt;OutOfMemory&gt;"
    ]


def test_a_repeated_message_id_is_posted_once(webhook: Slack) -> None:
    event = sns_event("The warehouse is behind.", "totes freshness breach", "m-1")
    assert slack.handler(event, None) == {"sent": 1, "skipped": 0}
    assert slack.handler(event, None) == {"sent": 0, "skipped": 1}  # SNS delivered it again
    slack.handler(sns_event("The warehouse is behind.", "totes freshness breach", "m-2"), None)
    assert len(webhook.received) == 2


def test_slack_failing_raises_without_the_webhook_url(
    webhook: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the Lambda's application log level (terraform/slack.tf)
    webhook.status = 500
    event = sns_event("totes run failed at start-up.", "totes run failed", "m-1")
    with pytest.raises(slack.SlackError) as raised:
        slack.handler(event, None)  # raised, so that Lambda tries the message again
    assert str(raised.value) == "Slack answered 500: no_service: <webhook>"
    told = caplog.text + "".join(traceback.format_exception(raised.value))
    assert "Slack answered 500" in caplog.text
    assert webhook.token not in told and "/services/" not in told
    webhook.status = 200  # the retry gets through, and is not taken for a repeat
    assert slack.handler(event, None) == {"sent": 1, "skipped": 0}
    assert len(webhook.received) == 2


def test_slack_unreachable_raises_without_the_webhook_url(
    container: str, stub: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    closed = stub.url.replace(stub.url.split("/")[2], f"127.0.0.1:{free_port()}")  # nobody there
    boto3.client("secretsmanager").put_secret_value(SecretId=container, SecretString=closed)
    with pytest.raises(slack.SlackError) as raised:
        slack.handler(sns_event("totes run failed.", "totes run failed"), None)
    assert str(raised.value) == "could not reach Slack: ConnectionRefusedError: Connection refused"
    told = caplog.text + "".join(traceback.format_exception(raised.value))
    assert stub.token not in told


@pytest.mark.parametrize("value", [None, " \n"], ids=["no value", "blank"])
def test_a_secret_without_a_url_says_how_to_put_one(
    container: str, stub: Slack, value: str | None
) -> None:
    if value is not None:
        boto3.client("secretsmanager").put_secret_value(SecretId=container, SecretString=value)
    with pytest.raises(slack.SlackConfigError) as raised:
        slack.handler(sns_event("totes run failed.", "totes run failed"), None)
    assert str(raised.value) == (
        f"the secret {container} holds no Slack webhook URL yet: put it with "
        f"`aws secretsmanager put-secret-value --secret-id {container} "
        "--secret-string https://hooks.slack.com/services/...`"
    )
    assert stub.received == []


def test_a_webhook_that_is_not_https_is_refused(container: str) -> None:
    # plain http would send the secret path in clear text (loopback is for stand-ins like ours)
    url = "http://hooks.slack.com/services/T0TES/B0TES/abc"
    boto3.client("secretsmanager").put_secret_value(SecretId=container, SecretString=url)
    with pytest.raises(slack.SlackConfigError, match="does not hold an https:// URL") as raised:
        slack.handler(sns_event("totes run failed.", "totes run failed"), None)
    assert "abc" not in str(raised.value)


def test_a_container_without_the_secret_variable_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(slack.SECRET_VARIABLE, raising=False)
    monkeypatch.setattr(slack, "_subscriber", None)
    with pytest.raises(slack.SlackConfigError, match="TOTES_SLACK_WEBHOOK_SECRET is not set"):
        slack.handler(sns_event("totes run failed."), None)
