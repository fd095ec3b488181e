"""Settings: the environment contract, the optional .env, and URLs that never leak passwords."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from ingestion.common.database import scrub
from ingestion.config import describe, load_settings, redact, sqlalchemy_url
from ingestion.errors import ConfigError
from tests.conftest import REPO

URL = "postgresql://reader:p4ss@db.example.com:6543/totesys"


def test_unset_urls_fall_back_to_the_embedded_postgres(tmp_path: Path) -> None:
    settings = load_settings({}, env_file=tmp_path / ".env")
    assert settings.source_url == "postgresql://postgres@127.0.0.1:54329/totesys"
    assert settings.warehouse_url == "postgresql://postgres@127.0.0.1:54329/warehouse"
    assert (settings.lake_url, settings.processed_url) == (".totes/lake", ".totes/processed")
    assert settings.embedded_source and settings.embedded_warehouse
    assert settings.key_check_every == 12
    assert settings.compact_at_files == 100
    assert settings.fx_url is None  # the offline FX stub


def test_a_set_url_is_used_and_only_the_other_falls_back(tmp_path: Path) -> None:
    settings = load_settings({"TOTES_SOURCE_URL": URL}, env_file=tmp_path / ".env")
    assert settings.source_url == URL and not settings.embedded_source
    assert settings.embedded_warehouse and settings.needs_local_postgres


def test_dotenv_is_read_and_the_environment_wins_over_it(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"TOTES_SOURCE_URL={URL}\nTOTES_LAKE_URL=/data/lake\n")
    settings = load_settings({"TOTES_LAKE_URL": "/override"}, env_file=env_file)
    assert settings.source_url == URL
    assert settings.lake_url == "/override"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TOTES_SOURCE_URL", "not a url", "TOTES_SOURCE_URL is not a URL"),
        ("TOTES_SOURCE_URL", "mysql://u:Secret7@h/db", "TOTES_SOURCE_URL must look like"),
        ("TOTES_WAREHOUSE_URL", "postgresql://u:Secret7@h:5432", "TOTES_WAREHOUSE_URL must look"),
        ("TOTES_WAREHOUSE_URL", "postgresql://u:Secret7@x@h/db", "write it %-escaped, as %40"),
        ("TOTES_SOURCE_URL", "postgresql://u:Secret7@h:port/db", "TOTES_SOURCE_URL is not a URL"),
        (
            "TOTES_WAREHOUSE_URL",
            "postgresql://u:Secret7@h/db?sslmode=require&target_session_attrs=any",
            "sets target_session_attrs in its query; dbt reads only sslmode and sslrootcert",
        ),
        ("TOTES_LOCAL_PORT", "eighty", "TOTES_LOCAL_PORT must be a TCP port"),
        ("TOTES_KEY_CHECK_EVERY", "0", "TOTES_KEY_CHECK_EVERY must be a whole number of runs"),
        ("TOTES_KEY_CHECK_EVERY", "hourly", "TOTES_KEY_CHECK_EVERY must be a whole number"),
        ("TOTES_COMPACT_AT_FILES", "1", "TOTES_COMPACT_AT_FILES must be a whole number of files"),
        ("TOTES_FX_URL", "ftp://u:Secret7@rates.example", "TOTES_FX_URL must be an http"),
        ("TOTES_FX_URL", "rates.example/u:Secret7", "TOTES_FX_URL must be an http"),
    ],
)
def test_bad_settings_fail_naming_the_variable_without_the_password(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        load_settings({variable: value}, env_file=tmp_path / ".env")
    assert "Secret7" not in str(error.value)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        # %-escaped, as a user should write it: kept as it is
        (
            "postgresql://u:p%40%3A%2F%25%23%3F%26%20x@h/db",
            "postgresql://u:p%40%3A%2F%25%23%3F%26%20x@h/db",
        ),
        # raw characters SQLAlchemy's grammar allows: escaped for libpq and dlt, spaces too
        (
            "postgresql://u:a/b#c?d x@h:5433/my db?sslmode=require",
            "postgresql://u:a%2Fb%23c%3Fd%20x@h:5433/my%20db?sslmode=require",
        ),
    ],
)
def test_a_url_is_kept_with_its_password_escaped_the_one_way(given: str, canonical: str) -> None:
    settings = load_settings({"TOTES_SOURCE_URL": given, "TOTES_WAREHOUSE_URL": given})
    assert settings.source_url == settings.warehouse_url == canonical
    assert scrub(f"failed for {given} and {canonical}", canonical).count("***") == 2


def test_urls_are_redacted_described_and_given_the_one_driver() -> None:
    assert "p4ss" not in redact(URL)
    assert describe(URL) == "db.example.com:6543/totesys"
    assert sqlalchemy_url(URL) == "postgresql+psycopg2://reader:p4ss@db.example.com:6543/totesys"
    assert scrub("failed for reader:p4ss", URL) == "failed for reader:***"


def test_dlt_reads_totes_settings_folder_and_never_imports_streamlit(tmp_path: Path) -> None:
    # With no secrets.toml to read, dlt imports streamlit (0.6 s a run) to look for its secrets.
    # A fresh process, in a folder with no .dlt of its own, as `totes run` starts.
    env = {k: v for k, v in os.environ.items() if k != "DLT_PROJECT_DIR"}
    looked_up = subprocess.run(
        [sys.executable, "-c", "import sys, ingestion, dlt; dlt.secrets.get('totes.nothing'); "
         "print('streamlit' in sys.modules)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert looked_up.stdout.strip() == "False"


def dbt_profile(environ: dict[str, str]) -> dict[str, object]:
    """The warehouse output of profiles.yml as dbt renders it in `environ` (dbt's own loader)."""
    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    set_invocation_context(environ)  # what dbt's env_var() reads
    raw = read_profile(str(REPO))["totes"]
    return Profile.render_profile(raw, "totes", None, ProfileRenderer({}))[1]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://reader:p4ss@db.example.com:6543/totesys",
        "postgresql://u:p%40%3A%2F%25%23%3F%26%20x@h/db",  # %-escaped: @ : / % # ? & and a space
        "postgresql://u:a/b#c?d x+y@h:5433/db",  # raw, as SQLAlchemy's grammar allows
        "postgresql://us%C3%A9r:%E2%82%AC%zz@h/ware%20house",  # UTF-8 escapes; %zz is no escape
        "postgresql://u@[::1]:6000/db",  # no password; an IPv6 host
        "postgresql://u:@h/db?sslmode=verify-full&sslrootcert=/etc/ssl/a+b%2Bc.pem",
        "postgres://u:pw@h/db?sslmode=require",
    ],
)
def test_dbt_reads_the_same_parts_of_the_warehouse_url_as_totes(url: str) -> None:
    parsed = make_url(url)
    profile = dbt_profile(
        {"TOTES_WAREHOUSE_URL": load_settings({"TOTES_WAREHOUSE_URL": url}).warehouse_url}
    )
    assert profile["user"] == parsed.username
    assert profile["password"] == (parsed.password or "")
    assert profile["host"] == parsed.host
    assert profile["port"] == (parsed.port or 5432)
    assert profile["dbname"] == parsed.database
    assert profile["sslmode"] == parsed.query.get("sslmode", "prefer")
    assert profile["sslrootcert"] == parsed.query.get("sslrootcert", "")
    # as a user gives it to dbt from the command line, not escaped the one way
    assert dbt_profile({"TOTES_WAREHOUSE_URL": url}) == profile


def test_dbt_without_a_warehouse_url_reads_the_embedded_one() -> None:
    profile = dbt_profile({"TOTES_LOCAL_PORT": "6123"})
    assert (profile["user"], profile["password"], profile["host"]) == ("postgres", "", "127.0.0.1")
    assert (profile["port"], profile["dbname"]) == (6123, "warehouse")
