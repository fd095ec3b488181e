"""Settings from the environment (12-factor), with an optional `.env` and embedded defaults.

The variables are those of ARCHITECTURE.md and the README's Configuration table. A database URL
that is not set falls back to the embedded Postgres, which `ingestion.local.postgres` starts on
demand.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ingestion.errors import ConfigError

HOME = Path(".totes")
LOCAL_PORT = 54329
SOURCE_DB = "totesys"
WAREHOUSE_DB = "warehouse"


@dataclass(frozen=True)
class Settings:
    source_url: str
    warehouse_url: str
    lake_url: str
    processed_url: str
    home: Path
    local_port: int
    retry_seconds: float  # how long transient failures are retried before giving up
    key_check_every: int  # runs between two checks of the source's ids, which find deletes
    compact_at_files: int  # files a lake day folder may hold before it is merged into one
    alert_topic_arn: str | None  # SNS topic for failure and freshness alerts
    log_group: str | None  # the CloudWatch log group, named in alerts
    fx_url: str | None  # a Frankfurter-style FX API; None: the offline stub (extract.fx_stub)
    deliveries_url: str  # where the delivery partner drops its JSON files (extract.deliveries)
    # the Secrets Manager secret of the API's bearer tokens; None: the file home/api-tokens
    api_tokens_secret: str | None
    # True when the URL was not given, so the embedded Postgres must serve it.
    embedded_source: bool
    embedded_warehouse: bool

    @property
    def needs_local_postgres(self) -> bool:
        return self.embedded_source or self.embedded_warehouse


def local_url(database: str, port: int) -> str:
    """URL of a database on the embedded Postgres (trust auth, loopback only)."""
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path = Path(".env")
) -> Settings:
    """Read settings from `environ` (default: the process environment) over an optional `.env`."""
    values: dict[str, str] = {
        k: v for k, v in dotenv_values(env_file).items() if v is not None and env_file.exists()
    }
    values.update(os.environ if environ is None else environ)
    home = Path(values.get("TOTES_HOME", str(HOME)))
    port = _port(values.get("TOTES_LOCAL_PORT", str(LOCAL_PORT)))
    source = values.get("TOTES_SOURCE_URL") or ""
    warehouse = values.get("TOTES_WAREHOUSE_URL") or ""
    if warehouse:
        check_dbt_reads(parse_postgres_url(warehouse, "TOTES_WAREHOUSE_URL"))
    return Settings(
        source_url=canonical_url(source, "TOTES_SOURCE_URL") or local_url(SOURCE_DB, port),
        warehouse_url=canonical_url(warehouse, "TOTES_WAREHOUSE_URL")
        or local_url(WAREHOUSE_DB, port),
        lake_url=values.get("TOTES_LAKE_URL") or str(home / "lake"),
        processed_url=values.get("TOTES_PROCESSED_URL") or str(home / "processed"),
        home=home,
        local_port=port,
        retry_seconds=_seconds(values.get("TOTES_RETRY_SECONDS", "60")),
        key_check_every=_whole_number(values, "TOTES_KEY_CHECK_EVERY", "12", "runs", 1),
        compact_at_files=_whole_number(values, "TOTES_COMPACT_AT_FILES", "100", "files", 2),
        alert_topic_arn=values.get("TOTES_ALERT_TOPIC_ARN") or None,
        log_group=values.get("TOTES_LOG_GROUP") or None,
        fx_url=_http_url(values.get("TOTES_FX_URL") or None, "TOTES_FX_URL"),
        deliveries_url=values.get("TOTES_DELIVERIES_URL") or str(home / "drop" / "deliveries"),
        api_tokens_secret=values.get("TOTES_API_TOKENS_SECRET", "").strip() or None,
        embedded_source=not source,
        embedded_warehouse=not warehouse,
    )


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"TOTES_LOCAL_PORT must be a TCP port number, got {text!r}")
    return int(text)


def _http_url(url: str | None, name: str) -> str | None:
    if url is not None and not url.startswith(("http://", "https://")):
        scheme = url.partition(":")[0] if ":" in url else url[:10]  # never the rest: a password
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {scheme!r}...")
    return url


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1
    if seconds < 0:
        raise ConfigError(f"TOTES_RETRY_SECONDS must be a number of seconds, got {text!r}")
    return seconds


def _whole_number(
    values: Mapping[str, str], name: str, default: str, unit: str, minimum: int
) -> int:
    text = values.get(name, default)
    if not text.isdigit() or int(text) < minimum:
        raise ConfigError(
            f"{name} must be a whole number of {unit}, {minimum} or more, got {text!r}"
        )
    return int(text)


def parse_postgres_url(url: str, name: str) -> URL:
    """Parse a `postgresql://user:pass@host:port/db` URL, or fail naming the variable."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            f"{name} is not a URL; expected postgresql://user:password@host:port/database, "
            "with '@', ':', '/' and '%' in the user or password %-escaped (@ is %40)"
        ) from None
    if parsed.host and "@" in parsed.host:  # SQLAlchemy ends the password at the first '@'
        raise ConfigError(f"{name} has '@' in its password: write it %-escaped, as %40")
    if parsed.get_backend_name() not in ("postgresql", "postgres") or not parsed.database:
        raise ConfigError(
            f"{name} must look like postgresql://user:password@host:port/database, "
            f"got {redact(url)}"
        )
    return parsed


# The query settings profiles.yml hands to dbt; libpq would take more, but dbt would not.
DBT_QUERY_SETTINGS = ("sslmode", "sslrootcert")


def check_dbt_reads(url: URL) -> None:
    """dbt connects with the warehouse URL's parts that profiles.yml reads: refuse the rest."""
    unread = sorted(set(url.query) - set(DBT_QUERY_SETTINGS))
    if unread:
        raise ConfigError(
            f"TOTES_WAREHOUSE_URL sets {', '.join(unread)} in its query; dbt reads only "
            f"{' and '.join(DBT_QUERY_SETTINGS)} there"
        )


def canonical_url(url: str, name: str) -> str:
    """The URL with its user, password and database %-escaped one way, so that a password
    written with a raw '#', '?' or '/' means the same to every client. Empty: unset."""
    if not url:
        return url
    rendered = parse_postgres_url(url, name).render_as_string(hide_password=False)
    # SQLAlchemy leaves spaces as they are (its query has none: '+'); the libpq of dlt's ADBC
    # driver refuses them
    return rendered.replace(" ", "%20")


def sqlalchemy_url(url: str) -> str:
    """The same database as a psycopg2 SQLAlchemy URL (the one driver this project uses)."""
    parsed = make_url(url).set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def redact(url: str) -> str:
    """The URL with its password replaced, safe for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def describe(url: str) -> str:
    """`host:port/database`, for messages that name a database without credentials."""
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"
