"""The dashboard, served by `totes dashboard` and looked at in a real headless Chromium (Debian's
chromium and chromedriver, which `make test` installs): every chart draws its data, and a
screenshot is written to .totes/screenshots/ for a person to look at."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ingestion.common.database import preflight
from ingestion.config import Settings
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.generate import init_source
from tests.conftest import free_port, new_stack, settings_environment, totes, wait_for_port

SCREENSHOTS = Path(".totes/screenshots")
CHARTS = 8  # six business questions, and the pipeline's runs and freshness
# a chart's data marks in Vega's SVG: a path per bar (axes, legends and rules are not rects)
DATA_MARKS = "g.mark-rect.role-mark > path"  # every chart is bars


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    # Debian's Chromium (`make test` installs it), or a GitHub runner's Chrome
    chromium = shutil.which("chromium") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver") or shutil.which(
        "chromedriver", path=os.environ.get("CHROMEWEBDRIVER")
    )
    assert chromium and driver, (
        "a browser and its driver are needed: `make test-packages` installs Debian's chromium and "
        "chromium-driver"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # this machine has no internet: no background calls home
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1600,3000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    yield chrome
    chrome.quit()


def serve_dashboard(settings: Settings, cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "totes"), "dashboard", "--port", str(port)],
        env=settings_environment(settings),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, server, "the dashboard")
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def dashboard(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("dashboard")
    settings = new_stack(postgres, home)
    preflight(settings)
    init_source(settings.source_url, scale=0.05, seed=3)
    ran = totes("run", env=settings_environment(settings), cwd=home)  # the ledger records it
    assert ran.returncode == 0, ran.stderr
    server, url = serve_dashboard(settings, home)
    yield url
    server.terminate()
    server.wait(timeout=30)


def drawn_charts(chrome: webdriver.Chrome) -> list[int]:
    """For each chart on the page, how many data marks it has drawn."""
    charts = chrome.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")
    return [len(chart.find_elements(By.CSS_SELECTOR, DATA_MARKS)) for chart in charts]


def test_every_chart_draws_its_data_and_a_screenshot_is_written(
    browser: webdriver.Chrome, dashboard: str
) -> None:
    browser.get(dashboard)
    try:
        WebDriverWait(browser, 60).until(
            lambda chrome: len(marks := drawn_charts(chrome)) == CHARTS and all(marks)
        )
    except TimeoutException:
        pytest.fail(f"charts drawn (data marks each): {drawn_charts(browser)}")
    assert "totes" in browser.title
    page = browser.find_element(By.TAG_NAME, "body").text
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stException']"), page
    for title in (
        "Monthly revenue by currency",
        "Revenue by delivery country (top 10)",
        "Top 10 designs",
        "Sales staff performance (top 10)",
        "Outstanding payments (top 10 counterparties)",
        "Purchase spend (top 10 suppliers)",
        "Last runs",
        "Freshness lag by source table",
    ):
        assert title in page
    assert "£" in page  # the metrics are in pounds
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "dashboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 50_000


def test_a_warehouse_without_a_star_schema_gets_a_clear_message(
    browser: webdriver.Chrome, postgres: LocalPostgres, tmp_path: Path
) -> None:
    settings = new_stack(postgres, tmp_path)  # created, never run
    server, url = serve_dashboard(settings, tmp_path)
    try:
        browser.get(url)
        try:
            WebDriverWait(browser, 60).until(
                lambda chrome: chrome.find_elements(By.CSS_SELECTOR, "[data-testid='stAlert']")
            )
        finally:
            page = browser.find_element(By.TAG_NAME, "body").text
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "cannot answer" in page and "has totes run built the star schema?" in page
    assert "does not exist" in page  # the database's own words
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
