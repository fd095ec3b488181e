"""An S3 outage in the middle of a run: the S3 API answers 500 for a while, then recovers.

A small HTTP proxy stands between `totes` and moto's server and plays the outage. botocore's own
retries are turned off (AWS_MAX_ATTEMPTS=1), so totes' stage retries are what must carry the
run through, and nothing may be lost or doubled on the way.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ingestion.extract import TABLES
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.generate import init_source
from tests.conftest import S3, lake_versions, new_stack, query, settings_environment, totes

OUTAGE_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message>"
    b"</Error>"
)
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


class OutageProxy(ThreadingHTTPServer):
    """Forwards every request to `upstream`, except that from the `fail_from`-th request on it
    answers 500 InternalError for `seconds`."""

    daemon_threads = True

    def __init__(self, upstream: str, fail_from: int, seconds: float) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = urlsplit(upstream).netloc
        self.fail_from, self.seconds = fail_from, seconds
        self.requests = self.failed = 0
        self.outage_ends: float | None = None
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def in_outage(self) -> bool:
        with self.lock:
            self.requests += 1
            if self.outage_ends is None and self.requests >= self.fail_from:
                self.outage_ends = time.monotonic() + self.seconds
            failing = self.outage_ends is not None and time.monotonic() < self.outage_ends
            self.failed += failing
            return failing


class _Forward(BaseHTTPRequestHandler):
    server: OutageProxy
    protocol_version = "HTTP/1.1"

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.in_outage():
            self._answer(500, [("Content-Type", "application/xml")], OUTAGE_ERROR)
            return
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_HEADERS]
        upstream.close()
        self._answer(response.status, kept, payload)

    def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() != "content-length":
                self.send_header(key, value)
        # a HEAD answer announces the length of the body it leaves out
        length = dict((k.lower(), v) for k, v in headers).get("content-length")
        self.send_header("Content-Length", length if self.command == "HEAD" else str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

    def log_message(self, format: str, *args: object) -> None:  # quiet: no line per request
        pass


@pytest.fixture
def outage(s3: S3) -> Iterator[OutageProxy]:
    proxy = OutageProxy(s3.endpoint, fail_from=25, seconds=4)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_a_run_rides_out_an_s3_outage_and_loses_nothing(
    postgres: LocalPostgres, s3: S3, outage: OutageProxy, tmp_path: Path
) -> None:
    settings = new_stack(postgres, tmp_path, s3)
    init_source(settings.source_url, scale=0.01, seed=5)
    env = settings_environment(settings, AWS_ENDPOINT_URL_S3=outage.endpoint, AWS_MAX_ATTEMPTS="1")
    result = totes("run", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    retries = result.stderr.count("totes: retrying:")
    assert outage.failed > 0 and retries > 0
    assert "totes: retrying: the extract stage" in result.stderr
    for table in TABLES:
        source = query(settings.source_url, f"select {table}_id, last_updated from {table}")
        assert sorted(lake_versions(settings.lake_url, table)) == sorted(source), table
        raw = query(settings.warehouse_url, f"select count(*) from totesys_raw.{table}")
        assert raw == [(len(source),)], table
    print(f"\nS3 outage: {outage.failed} requests answered 500, {retries} stage retries, 0 lost")
