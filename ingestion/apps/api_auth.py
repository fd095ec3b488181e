"""Who may read the payments API: the bearer tokens it accepts, where they come from, and how
often an address may fail to present one.

The tokens come from one of two places (`token_source` chooses, as `totes api` does):

- TOTES_API_TOKENS_SECRET set: that AWS Secrets Manager secret (name or ARN), whose value holds
  the tokens separated by whitespace. It is read at start and again once the copy is a minute
  old, so that a new value rotates the tokens without a redeploy.
- unset: the file $TOTES_HOME/api-tokens, one token per line, made with one new token when it is
  missing, and read again whenever it changes.

Two tokens are valid at once while clients move from the old one to the new. No token at all
means that nobody gets in, never that everybody does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import secrets
import shlex
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from ingestion.errors import ConfigError

LOG = logging.getLogger(__name__)

SECRET_SETTING = "TOTES_API_TOKENS_SECRET"  # noqa: S105 (the setting's name, no secret)
FILE_NAME = "api-tokens"  # under TOTES_HOME
EXAMPLE_PATH = "/payments/last5"


class TokensUnavailable(Exception):
    """The accepted tokens cannot be read, and no earlier copy of them is at hand."""


class TokenSource(Protocol):
    def current(self) -> frozenset[str]:
        """The tokens accepted now; raises TokensUnavailable when they cannot be known."""
        ...


def new_token() -> str:
    return secrets.token_urlsafe(32)


def accepts(presented: str, accepted: Iterable[str]) -> bool:
    """Whether `presented` is one of `accepted`. Digests of equal length are compared in constant
    time, and every accepted token is compared: the time taken says neither how much of a guess
    was right nor which token matched."""
    digest = hashlib.sha256(presented.encode()).digest()
    found = False
    for token in accepted:
        found |= hmac.compare_digest(digest, hashlib.sha256(token.encode()).digest())
    return found


class TokenFile:
    """Tokens in a file, one a line, read again when the file changes (its modification time,
    size or inode: an edit, or a new file moved in place)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._tokens: frozenset[str] = frozenset()
        self._missing = False

    def create(self) -> bool:
        """Make the file with one new token, unless it exists; whether it made it. It is
        created readable by its owner only (no moment when others could read it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as file:
            file.write(new_token() + "\n")
        return True

    def current(self) -> frozenset[str]:
        with self._lock:
            try:
                with self.path.open(encoding="utf-8") as file:
                    status = os.fstat(file.fileno())
                    seen = (status.st_mtime_ns, status.st_size, status.st_ino)
                    if seen != self._seen:
                        self._tokens = _tokens(file.read(), f"the file {self.path}")
                        self._seen = seen
            except (OSError, UnicodeDecodeError) as error:
                if not self._missing:  # once, not on every request
                    reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
                    LOG.warning(
                        "the API's tokens cannot be read from %s (%s): requests that need one "
                        "are answered 503 until it can",
                        self.path,
                        reason or type(error).__name__,
                    )
                self._missing = True
                raise TokensUnavailable(f"cannot read {self.path}") from error
            self._missing = False
            return self._tokens

    def instructions(self, url: str) -> str:
        """How a user of `totes api` on `url` gets a token: a command that uses one."""
        return (
            "every path but /health needs a bearer token: curl -H "
            f'"Authorization: Bearer $(head -1 {shlex.quote(str(self.path))})" {url}{EXAMPLE_PATH}'
        )


class SecretsManagerTokens:
    """Tokens in the value of a Secrets Manager secret, read again once `refresh_seconds` old.
    When a read fails, the last tokens read stay valid (a Secrets Manager hiccup locks nobody
    out) and the next read is tried `retry_seconds` later."""

    def __init__(
        self,
        secret_id: str,
        client: Any = None,  # a boto3 secretsmanager client; None: one from the environment
        *,
        refresh_seconds: float = 60.0,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret_id = secret_id
        self.client = client if client is not None else _secrets_client(secret_id)
        self.refresh_seconds = refresh_seconds
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens: frozenset[str] | None = None
        self._read_at = -math.inf
        self._tried_at = -math.inf

    def current(self) -> frozenset[str]:
        with self._lock:
            now = self.clock()
            if (
                now - self._read_at >= self.refresh_seconds
                and now - self._tried_at >= self.retry_seconds
            ):
                self._refresh(now)
            if self._tokens is None:
                raise TokensUnavailable(f"cannot read the secret {self.secret_id}")
            return self._tokens

    def _refresh(self, now: float) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        self._tried_at = now
        try:
            value = self.client.get_secret_value(SecretId=self.secret_id).get("SecretString")
        except (BotoCoreError, ClientError) as error:  # their messages never hold the value
            if self._tokens is None:
                LOG.warning(
                    "the API's tokens cannot be read from the secret %s (%s): requests that "
                    "need one are answered 503 until they can; put them with `aws "
                    "secretsmanager put-secret-value --secret-id %s --secret-string ...`",
                    self.secret_id,
                    error,
                    self.secret_id,
                )
            else:
                LOG.warning(
                    "the API's tokens could not be read again from the secret %s (%s): the "
                    "ones read %.0f s ago stay valid",
                    self.secret_id,
                    error,
                    now - self._read_at,
                )
            return
        self._tokens = _tokens(value or "", f"the secret {self.secret_id}")
        self._read_at = now

    def instructions(self, url: str) -> str:
        return (
            "every path but /health needs a bearer token, one of those in the Secrets Manager "
            f"secret {self.secret_id}: curl -H 'Authorization: Bearer <token>' {url}{EXAMPLE_PATH}"
        )


def _tokens(text: str, where: str) -> frozenset[str]:
    tokens = frozenset(text.split())
    if not tokens:
        LOG.warning("%s holds no API token: every request that needs one is refused", where)
    return tokens


def _secrets_client(secret_id: str) -> Any:
    import boto3
    from botocore.config import Config

    # an ARN names its region; else AWS_REGION (which ECS sets), else boto3's own chain
    parts = secret_id.split(":")
    region = parts[3] if secret_id.startswith("arn:") and len(parts) > 3 else None
    return boto3.client(
        "secretsmanager",
        region_name=region or os.environ.get("AWS_REGION") or None,
        # a slow Secrets Manager delays a request by seconds at most, not minutes
        config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2}),
    )


def token_source(secret_id: str | None, home: Path) -> TokenFile | SecretsManagerTokens:
    """The token source `totes api` uses: the secret `secret_id` (TOTES_API_TOKENS_SECRET), else
    the token file under `home` (TOTES_HOME), made with a new token when it is missing."""
    if secret_id:
        from botocore.exceptions import NoRegionError

        try:
            return SecretsManagerTokens(secret_id)
        except NoRegionError:
            raise ConfigError(
                f"{SECRET_SETTING} names a secret but no AWS region is set: set AWS_REGION, "
                "or give the secret's ARN"
            ) from None
    tokens = TokenFile(home / FILE_NAME)
    try:
        tokens.create()
    except OSError as error:
        raise ConfigError(
            f"cannot make the API's token file {tokens.path} ({error.strerror}): set TOTES_HOME "
            f"to a folder it may write, or {SECRET_SETTING} to a Secrets Manager secret"
        ) from None
    return tokens


class FailureLimit:
    """At most `max_failures` failed attempts from one address in any `window` seconds: an
    address that reached it is refused until its oldest failure in the window is that old.
    At most `max_addresses` addresses are tracked; the one that failed longest ago goes first."""

    def __init__(
        self,
        max_failures: int = 10,
        window: float = 60.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or max_addresses < 1:
            raise ValueError("max_failures and max_addresses must be at least 1")
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self.clock = clock
        self._lock = threading.Lock()
        # per address, the times of its latest failures; the address that failed last, last
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may try again, or None when it may now."""
        with self._lock:
            times = self._failures.get(address)
            if times is None or len(times) < self.max_failures:
                return None
            wait = times[0] + self.window - self.clock()
        return math.ceil(wait) if wait > 0 else None

    def record(self, address: str) -> None:
        with self._lock:
            times = self._failures.pop(address, None) or deque(maxlen=self.max_failures)
            times.append(self.clock())
            self._failures[address] = times
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)
