"""S3 requests per run, counted at an S3 API server (moto's, over HTTP): the figure AWS bills
per request, which a loop every 30 seconds multiplies by ten against a 5-minute schedule.

`totes run` with the lake and the processed zone on the server: an initial load, then a run
after no change and a run after a small churn, each run's requests counted by S3's price tiers
(PUT, COPY, POST and LIST at one price; GET and HEAD at a tenth of it; DELETE free).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from ingestion.local.source.churn import churn

REQUEST = re.compile(
    r'"(?P<method>[A-Z]+) /(?P<bucket>[^/?" ]+)(?P<key>/[^?" ]*)?(?P<query>\?\S*)?'
)
SMALL_CHURN = {"orders": 15, "payments_paid": 10, "updates": 5}  # about 60 changed rows


def tier(method: str, key: str) -> str | None:
    """S3's price tier of one request: "put_list", "get", or None (free)."""
    if method in ("PUT", "POST", "COPY") or (method == "GET" and not key.strip("/")):
        return "put_list"  # a GET of the bucket itself is a LIST
    if method in ("GET", "HEAD"):
        return "get"
    return None


def count(log: str) -> dict[str, int]:
    counts = {"put_list": 0, "get": 0}
    for match in REQUEST.finditer(log):
        kind = tier(match["method"], match["key"] or "")
        if kind:
            counts[kind] += 1
    return counts


def measure(
    environment: dict[str, str],
    cwd: Path,
    source_url: str,
    totes: Callable[[dict[str, str], Path], None],
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Requests per run with the zones on a fresh S3 server. `environment` points at an empty
    warehouse; `totes(env, cwd)` runs `totes run` to completion."""
    log_path = cwd / "s3.log"
    cwd.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    with log_path.open("a") as log:
        server = subprocess.Popen(  # noqa: S603 (moto's server from this environment)
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        aws = {  # moto's server takes any credentials
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        s3_env = {
            **environment,
            **aws,
            "TOTES_LAKE_URL": "s3://totes-lake/totes",
            "TOTES_PROCESSED_URL": "s3://totes-processed",
        }
        _wait_for(endpoint)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=aws["AWS_DEFAULT_REGION"],
            aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        )
        for bucket in ("totes-lake", "totes-processed"):
            client.create_bucket(Bucket=bucket)

        def requests_of_a_run() -> dict[str, int]:
            before = len(log_path.read_text())
            totes(s3_env, cwd)
            return count(log_path.read_text()[before:])

        initial = requests_of_a_run()
        no_change = requests_of_a_run()
        churn(source_url, **SMALL_CHURN, seed=60)
        small_change = requests_of_a_run()
    finally:
        server.terminate()
        server.wait(timeout=30)
    say(f"S3 requests per run: no change {no_change}, ~60 changed rows {small_change}")
    return {"initial": initial, "no_change": no_change, "small_change": small_change}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(endpoint: str) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint, timeout=1)  # noqa: S310 (the local server)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto's server did not answer at {endpoint}")
