"""Slack: a Lambda subscribed to the alert topic posts each of its messages to a Slack channel.

Dedup: the pipeline's own alerts are deduplicated before they reach the topic (alerts.py) and
the alarms notify only when their state changes, so each SNS message becomes one Slack message.
SNS delivers at least once, though: a MessageId this container posted recently is skipped.

The incoming-webhook URL is a secret, in the Secrets Manager secret that TOTES_SLACK_WEBHOOK_SECRET
names. It is read once per container and never written to a log line or an error message. A
failed post raises, so that Lambda retries the message (twice, as for any asynchronous call).

Standard library and boto3 only, and nothing else from `ingestion`: the Lambda's zip holds this
one file (terraform/slack.tf).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from http.client import HTTPException
from typing import Any

import boto3

LOG = logging.getLogger(__name__)

SECRET_VARIABLE = "TOTES_SLACK_WEBHOOK_SECRET"  # noqa: S105 -- its name; it holds an ARN
TIMEOUT_SECONDS = 10.0
REMEMBERED_MESSAGES = 1000  # SNS redelivers within minutes; a container sees few alerts
LONGEST_TEXT = 3000  # an alert needs no more; Slack folds long messages anyway
STATE_ICONS = {"ALARM": ":red_circle:", "OK": ":large_green_circle:"}


class SlackConfigError(RuntimeError):
    """The subscriber cannot find a usable webhook URL."""


class SlackError(RuntimeError):
    """Slack did not take the message. The text never holds the webhook URL."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # a redirected POST would be re-sent as a GET and look delivered: a redirect is a failure
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def escape(text: str) -> str:
    """Slack mrkdwn reads <, > and & as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(subject: str | None, message: str) -> str:
    """The Slack text of one SNS message: a CloudWatch alarm as its name, new state and reason;
    anything else (the pipeline's alerts, the failed-task rule) as its subject and body."""
    try:
        parsed = json.loads(message)
    except ValueError:
        parsed = message
    if isinstance(parsed, dict) and {"AlarmName", "NewStateValue"} <= parsed.keys():
        state = str(parsed["NewStateValue"])
        lines = [
            f"{STATE_ICONS.get(state, ':grey_question:')} "
            f"*{escape(str(parsed['AlarmName']))}* is {escape(state)}"
        ]
        if parsed.get("NewStateReason"):
            lines.append(escape(str(parsed["NewStateReason"])))
        if state == "ALARM" and parsed.get("AlarmDescription"):
            lines.append(f"_{escape(str(parsed['AlarmDescription']))}_")
        text = "\n".join(lines)
    else:
        # the failed-task rule's input template is a JSON string: show the string, unquoted
        body = parsed if isinstance(parsed, str) else message
        text = f"*{escape(subject or 'totes alert')}*\n{escape(body)}"
    return text if len(text) <= LONGEST_TEXT else text[: LONGEST_TEXT - 1] + "…"


def redact(text: str, url: str) -> str:
    """`text` cut short and without the webhook URL or its path (the path is the secret part)."""
    path = urllib.parse.urlsplit(url).path
    for secret in (url, path):
        if len(secret) > 1:
            text = text.replace(secret, "<webhook>")
    return text[:200]


def describe(error: BaseException) -> str:
    """What went wrong, from the exception's type and OS error text only: some messages quote
    the URL (http.client's for a URL with a control character, for one)."""
    reason = getattr(error, "reason", error)
    if isinstance(reason, OSError) and reason.strerror:
        return f"{type(reason).__name__}: {reason.strerror}"
    return type(reason if isinstance(reason, BaseException) else error).__name__


def checked_webhook(url: str, secret_id: str) -> str:
    """`url` if it is https (or http to this machine: a stand-in for Slack in a test)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if (parts.scheme == "https" and host) or (parts.scheme == "http" and loopback):
        return url
    raise SlackConfigError(
        f"the secret {secret_id} does not hold an https:// URL: put the Slack incoming-webhook "
        "URL (https://hooks.slack.com/services/...) in it"
    )


class Subscriber:
    """One Lambda container's state: the webhook URL once read, the MessageIds it posted."""

    def __init__(
        self,
        secret_id: str,
        secrets: Any = None,
        timeout: float = TIMEOUT_SECONDS,
        remember: int = REMEMBERED_MESSAGES,
    ) -> None:
        self.secret_id = secret_id
        self.secrets = secrets  # a boto3 Secrets Manager client; made on first use if None
        self.timeout = timeout
        self.remember = remember
        self._url: str | None = None
        self._posted: OrderedDict[str, None] = OrderedDict()

    def handle(self, event: dict[str, Any]) -> dict[str, int]:
        """Post every SNS record of `event` not posted already; raise on the first failure."""
        sent = skipped = 0
        for record in event.get("Records", []):
            sns = record["Sns"]
            message_id = sns["MessageId"]
            if message_id in self._posted:
                LOG.info("SNS message %s was posted to Slack already: skipped", message_id)
                skipped += 1
                continue
            try:
                self.post(slack_text(sns.get("Subject"), sns.get("Message") or ""))
            except SlackError as error:
                LOG.error("SNS message %s was not posted to Slack: %s", message_id, error)
                raise
            self._posted[message_id] = None
            if len(self._posted) > self.remember:
                self._posted.popitem(last=False)
            LOG.info("SNS message %s posted to Slack: %s", message_id, sns.get("Subject"))
            sent += 1
        return {"sent": sent, "skipped": skipped}

    def webhook_url(self) -> str:
        if self._url is None:
            if self.secrets is None:
                self.secrets = boto3.client("secretsmanager")
            try:
                answer = self.secrets.get_secret_value(SecretId=self.secret_id)
            except self.secrets.exceptions.ResourceNotFoundException:
                answer = {}  # the secret exists (Terraform made it) but has no value yet
            url = (answer.get("SecretString") or "").strip()
            if not url:
                raise SlackConfigError(
                    f"the secret {self.secret_id} holds no Slack webhook URL yet: put it with "
                    f"`aws secretsmanager put-secret-value --secret-id {self.secret_id} "
                    "--secret-string https://hooks.slack.com/services/...`"
                )
            self._url = checked_webhook(url, self.secret_id)
        return self._url

    def post(self, text: str) -> None:
        url = self.webhook_url()
        request = urllib.request.Request(  # noqa: S310 -- https (or loopback http), checked_webhook
            url,
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with _OPENER.open(request, timeout=self.timeout):
                pass
        except urllib.error.HTTPError as error:
            # the next try re-reads the secret: a dead webhook may have been replaced meanwhile
            self._url = None
            body = redact(error.read(200).decode(errors="replace").strip(), url)
            raise SlackError(f"Slack answered {error.code}: {body}") from None
        except (OSError, ValueError, HTTPException) as error:  # URLError is an OSError
            self._url = None
            raise SlackError(f"could not reach Slack: {describe(error)}") from None


_subscriber: Subscriber | None = None  # lives as long as the Lambda container


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """The Lambda entry point, for the SNS events of the alert topic."""
    global _subscriber
    if _subscriber is None:
        secret_id = os.environ.get(SECRET_VARIABLE, "")
        if not secret_id:
            raise SlackConfigError(
                f"{SECRET_VARIABLE} is not set: it names the secret holding the webhook URL"
            )
        _subscriber = Subscriber(secret_id)
    return _subscriber.handle(event)
