"""Settings: the environment contract, the optional .env, and URLs that never leak passwords."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingestion.common.database import scrub
from ingestion.config import describe, load_settings, redact, sqlalchemy_url
from ingestion.errors import ConfigError

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
        ("TOTES_WAREHOUSE_URL", "postgresql://u:Secret7%40x@h/db", "cannot decode it"),
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
