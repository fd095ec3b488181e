"""`make lint-deps`: uv.lock's packages against an OSV service. OSV.dev is not reachable from
this workplace, so a local server answers in its place with OSV's API (a batch query, then one
advisory by id), and the real `uv audit` behind the make target asks it."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import REPO, free_port

# a locked package the planted advisory names, with the version uv.lock pins
PLANTED = "dbt-core"
LOCKED_VERSION = next(
    package["version"]
    for package in tomllib.loads((REPO / "uv.lock").read_text())["package"]
    if package["name"] == PLANTED
)
ADVISORY = {
    "id": "GHSA-0000-test-0000",
    "summary": "a planted advisory",
    "modified": "2026-01-01T00:00:00Z",
    "affected": [
        {
            "package": {"name": PLANTED, "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99"}]}],
        }
    ],
}


class OsvStub(ThreadingHTTPServer):
    """OSV's batch query and advisory routes; `vulnerable` says whether PLANTED has one."""

    def __init__(self, vulnerable: bool) -> None:
        self.vulnerable = vulnerable
        self.queried: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), OsvHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class OsvHandler(BaseHTTPRequestHandler):
    server: OsvStub

    def do_POST(self) -> None:
        queries = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["queries"]
        self.server.queried.extend(queries)
        planted = {"vulns": [{"id": ADVISORY["id"], "modified": ADVISORY["modified"]}]}
        hit = [
            planted if self.server.vulnerable and query["package"]["name"] == PLANTED else {}
            for query in queries
        ]
        self.answer({"results": hit})

    def do_GET(self) -> None:
        self.answer(ADVISORY)

    def answer(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serving(vulnerable: bool) -> Iterator[OsvStub]:
    stub = OsvStub(vulnerable)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    yield stub
    stub.shutdown()
    stub.server_close()


@pytest.fixture
def clean_osv() -> Iterator[OsvStub]:
    yield from serving(vulnerable=False)


@pytest.fixture
def vulnerable_osv() -> Iterator[OsvStub]:
    yield from serving(vulnerable=True)


def lint_deps(osv_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "lint-deps", f"OSV_URL={osv_url}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**{k: v for k, v in os.environ.items() if k != "TOTES_AUDIT"}, **env},
    )


def test_a_locked_package_with_an_advisory_fails_the_lint_naming_it(
    vulnerable_osv: OsvStub,
) -> None:
    result = lint_deps(vulnerable_osv.url)
    assert result.returncode != 0, result.stdout
    assert f"{PLANTED} {LOCKED_VERSION} has 1 known vulnerability" in result.stdout
    assert ADVISORY["id"] in result.stdout


def test_every_locked_package_is_asked_about_and_none_found_passes(clean_osv: OsvStub) -> None:
    result = lint_deps(clean_osv.url)
    assert result.returncode == 0, result.stdout + result.stderr
    asked = {query["package"]["name"]: query["version"] for query in clean_osv.queried}
    locked = tomllib.loads((REPO / "uv.lock").read_text())["package"]
    # every package uv.lock pins from an index, at its pinned version (totes itself is not one)
    from_index = {p["name"]: p["version"] for p in locked if "registry" in p.get("source", {})}
    assert asked == from_index


def test_an_unreachable_service_is_reported_and_fails_only_when_required() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    no_retries = {"UV_HTTP_RETRIES": "0"}  # uv's backoff would only cost seconds here
    relaxed = lint_deps(nobody, **no_retries)
    assert relaxed.returncode == 0, relaxed.stdout
    assert f"dependency audit NOT RUN: {nobody} cannot be reached" in relaxed.stdout
    required = lint_deps(nobody, TOTES_AUDIT="required", **no_retries)
    assert required.returncode != 0
    assert "error sending request" in required.stdout
