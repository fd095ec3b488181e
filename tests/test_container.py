"""The production image, built and run on this machine: `docker build` from a copy of the
checkout with a planted secret, then `totes run` from empty, a churn and `totes run` again in a
read-only container (host network, the test's Postgres, a local lake folder mounted), against
the same two runs outside it. Also `totes dbt test`, `totes status` and the API's /health in
the image, its user, its size and its contents.

What this does not prove: ECS itself (task roles, Secrets Manager injection, Fargate's scratch
volume on /tmp) and the image built from the official base images, which cannot be pulled here.
A Docker daemon that is not running is started (as root, vfs storage, as on these machines); if
none can be, the tests fail and say so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ingestion.apps.api_auth import new_token
from ingestion.config import Settings
from ingestion.local.postgres import LocalPostgres
from ingestion.local.source.churn import churn, now_utc
from ingestion.local.source.generate import init_source
from tests.conftest import (
    REPO,
    S3,
    checkout_files,
    free_port,
    new_stack,
    query,
    settings_environment,
    totes,
)
from tests.test_star_schema import mart_fingerprints

IMAGE = "totes:container-test"
PLANTED = "planted-Secret-7f3a"  # in the build context's .env: must reach no layer
LIMIT_MB = 400
CONTAINER_DATA = "/data"


def docker(
    *args: str, check: bool = True, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:2])} failed: {result.stderr[-2000:]}")
    return result


def daemon_answers() -> bool:
    return shutil.which("docker") is not None and docker("info", check=False).returncode == 0


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A running Docker daemon: the one there is, or one started here and stopped after."""
    if daemon_answers():
        yield
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        pytest.fail(
            "no Docker daemon answers, and none can be started here (dockerd "
            f"{'is not installed' if dockerd is None else 'needs root'}): `make test-packages` "
            "installs Debian's docker.io; or start your Docker"
        )
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [dockerd, "--storage-driver=vfs", "--iptables=false", "--bridge=none"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while not daemon_answers():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the Docker daemon did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    yield
    process.terminate()
    process.wait(timeout=60)


def buildkit_client() -> tuple[str, dict[str, str]]:
    """A docker client that builds with BuildKit, and the environment it needs: the legacy
    builder copies the whole file system for every instruction on vfs storage (12 minutes
    here, against one). Clients from 23 on need the buildx plugin for it; older ones (Debian's
    docker.io, /usr/bin/docker) have it built in."""
    candidates = dict.fromkeys(c for c in (shutil.which("docker"), "/usr/bin/docker") if c)
    for client in candidates:
        if not Path(client).exists():
            continue
        run = [client, "buildx", "version"]
        if subprocess.run(run, capture_output=True, check=False).returncode == 0:
            return client, {}
        version = subprocess.run(
            [client, "version", "--format", "{{.Client.Version}}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if re.match(r"\d+", version) and int(version.split(".")[0]) < 23:
            return client, {"DOCKER_BUILDKIT": "1"}
    pytest.fail(f"no docker client here builds with BuildKit ({', '.join(candidates)})")


def base_image_arguments() -> list[str]:
    """No arguments when the Dockerfile's base images can be pulled; otherwise the ones made
    from Debian's packages by docker/local-base-images.sh."""
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    official = re.findall(r"^ARG \w+_IMAGE=(\S+)$", dockerfile, flags=re.MULTILINE)
    if all(docker("pull", "--quiet", image, check=False).returncode == 0 for image in official):
        return []
    made = subprocess.run(
        [str(REPO / "docker" / "local-base-images.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert made.returncode == 0, f"docker/local-base-images.sh failed: {made.stderr[-2000:]}"
    runtime, build = made.stdout.split()
    return [
        *("--build-arg", f"UV_IMAGE={build}"),
        *("--build-arg", f"BUILD_IMAGE={build}"),
        *("--build-arg", f"RUNTIME_IMAGE={runtime}"),
    ]


def checkout_with_a_planted_secret(folder: Path) -> Path:
    """The checkout's files (tracked, or new and not ignored), plus a .env and local state
    that hold a password, as a developer's checkout would."""
    checkout_files(folder)
    (folder / ".env").write_text(f"TOTES_WAREHOUSE_URL=postgresql://u:{PLANTED}@db/warehouse\n")
    (folder / ".totes").mkdir()
    (folder / ".totes" / "secret.txt").write_text(PLANTED)
    return folder


@dataclass
class Built:
    seconds: float
    size_mb: float
    context: Path


@pytest.fixture(scope="module")
def image(daemon: None, tmp_path_factory: pytest.TempPathFactory) -> Built:
    client, build_env = buildkit_client()
    arguments = base_image_arguments()
    context = checkout_with_a_planted_secret(tmp_path_factory.mktemp("context"))
    started = time.monotonic()
    built = subprocess.run(
        [
            client,
            "build",
            "--network=host",
            "-f",
            "docker/Dockerfile",
            "-t",
            IMAGE,
            *arguments,
            ".",
        ],
        cwd=context,
        env={**os.environ, **build_env},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    seconds = time.monotonic() - started
    assert built.returncode == 0, f"docker build failed: {built.stderr[-3000:]}"
    # vfs storage keeps a full copy of every layer: the images earlier builds left untagged, and
    # an unbounded build cache, filled 69 GB of a developer's disk over a day of `make test`
    docker("image", "prune", "--force")
    docker("builder", "prune", "--force", "--keep-storage", "2GB")
    size = int(docker("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    return Built(seconds, size / 1e6, context)


def container_settings(settings: Settings) -> list[str]:
    """`settings` as `docker run` options, the lake and processed zone under /data."""
    environment = {
        "TOTES_SOURCE_URL": settings.source_url,
        "TOTES_WAREHOUSE_URL": settings.warehouse_url,
        "TOTES_LAKE_URL": f"{CONTAINER_DATA}/lake",
        "TOTES_PROCESSED_URL": f"{CONTAINER_DATA}/processed",
        "TOTES_KEY_CHECK_EVERY": str(settings.key_check_every),
        "TOTES_COMPACT_AT_FILES": str(settings.compact_at_files),
        "TOTES_LOG_FORMAT": "text",
    }
    return [f"--env={name}={value}" for name, value in environment.items()]


# As production runs it: a read-only root, /tmp a scratch volume, the host's network
PRODUCTION_LIKE = ("--read-only", "--tmpfs", "/tmp", "--network=host")  # noqa: S108 (docker's)


@dataclass
class Scenario:
    inside: Settings
    outside: Settings
    data: Path
    api_port: int
    api_token: str  # one of the tokens in the API's Secrets Manager secret (on moto's server)
    container: str  # serves the API; the later commands run in it (docker exec)
    seconds: dict[str, float]
    runs: dict[str, subprocess.CompletedProcess[str]]

    def totes(self, *args: str, env: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        """`totes *args` in the API's container: a new container would copy the whole image
        first (vfs storage has no copy-on-write), 10 to 15 s each here."""
        options = [f"--env={variable}" for variable in env]
        return docker("exec", *options, self.container, "totes", *args, check=False, timeout=600)


@pytest.fixture(scope="module")
def scenario(
    image: Built, postgres: LocalPostgres, s3: S3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    """One source; a warehouse and zones for the container, another for a `totes` process
    outside it. Both run from empty, then after the same churn: the container's first run is
    the image's default command, as the ECS task runs it; its second runs beside the API,
    which reads its tokens from Secrets Manager (moto's server), as the ECS service does."""
    inside = new_stack(postgres, tmp_path_factory.mktemp("inside"))
    outside = new_stack(postgres, tmp_path_factory.mktemp("outside"))
    outside = replace(outside, source_url=inside.source_url)
    data = tmp_path_factory.mktemp("data")
    data.chmod(0o777)  # the image's user (10001) writes the lake and processed zone here
    mount = ("-v", f"{data}:{CONTAINER_DATA}")
    init_source(inside.source_url, scale=0.05, seed=3)
    runs: dict[str, subprocess.CompletedProcess[str]] = {}
    seconds: dict[str, float] = {}

    def timed(name: str, run: Callable[[], subprocess.CompletedProcess[str]]) -> None:
        started = time.monotonic()
        runs[name] = run()
        seconds[name] = time.monotonic() - started

    env = settings_environment(outside)
    timed("initial load inside", lambda: docker(
        "run", "--rm", *PRODUCTION_LIKE, *mount, *container_settings(inside), IMAGE,
        check=False, timeout=600,
    ))  # fmt: skip
    timed("initial load outside", lambda: totes("run", env=env, cwd=outside.home))
    port, token = free_port(), new_token()
    aws = {
        "TOTES_API_TOKENS_SECRET": s3.new_secret("totes/api-tokens", token),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": s3.endpoint,
        **{name: os.environ[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
    }
    container = docker(
        *("run", "--detach", *PRODUCTION_LIKE, *mount, *container_settings(inside)),
        *(f"--env={name}={value}" for name, value in aws.items()),
        *(IMAGE, "api", "--host", "127.0.0.1", "--port", str(port)),
    ).stdout.strip()
    result = Scenario(inside, outside, data, port, token, container, seconds, runs)
    try:
        churn(inside.source_url, orders=40, payments_paid=30, updates=6, seed=8, at=now_utc())
        timed("churn inside", lambda: result.totes("run"))
        timed("churn outside", lambda: totes("run", env=env, cwd=outside.home))
        yield result
    finally:
        docker("rm", "--force", container, check=False)


def test_the_image_is_built_from_the_dockerfile_under_400_mb(
    image: Built, record_property: pytest.RecordProperty
) -> None:
    record_property("figure", f"image {image.size_mb:.0f} MB, built in {image.seconds:.0f} s")
    assert image.size_mb < LIMIT_MB, f"{image.size_mb:.0f} MB: see the Dockerfile's cuts"


def test_runs_in_the_container_build_the_same_marts_as_outside_it(
    scenario: Scenario, record_property: pytest.RecordProperty
) -> None:
    for name, run in scenario.runs.items():
        assert run.returncode == 0, f"{name}: {run.stdout[-1500:]}{run.stderr[-1500:]}"
    assert "done in" in scenario.runs["churn inside"].stdout
    assert mart_fingerprints(scenario.inside.warehouse_url) == mart_fingerprints(
        scenario.outside.warehouse_url
    )
    assert (scenario.data / "lake").is_dir() and (scenario.data / "processed").is_dir()
    for step in ("initial load", "churn"):
        inside, outside = (scenario.runs[f"{step} {side}"].stdout for side in ("inside", "outside"))
        record_property(
            "figure",
            f"{step}: the run {done_in(inside)} s in the container "
            f"({scenario.seconds[f'{step} inside']:.1f} s with docker run or exec), "
            f"{done_in(outside)} s outside it",
        )


def done_in(output: str) -> str:
    """The run's own time, from its last line ("done in 9.6 s")."""
    found = re.search(r"done in ([\d.]+) s", output)
    return found.group(1) if found else "?"


def test_dbt_test_and_status_work_in_the_image(scenario: Scenario) -> None:
    tested = scenario.totes("dbt", "test")
    assert tested.returncode == 0, tested.stdout[-2000:]
    assert re.search(r"Done\. PASS=\d+ WARN=0 ERROR=0", tested.stdout), tested.stdout[-1000:]
    status = scenario.totes("status", env=("TOTES_LOG_FORMAT=json",))
    assert status.returncode == 0, status.stdout + status.stderr


def test_the_api_in_the_image_serves_the_secrets_tokens_as_the_non_root_user(
    scenario: Scenario,
) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            url = f"http://127.0.0.1:{scenario.api_port}/health"
            with urllib.request.urlopen(url, timeout=5) as response:
                health = json.load(response)
                break
        except OSError:
            if time.monotonic() > deadline:
                logs = docker("logs", scenario.container, check=False)
                raise AssertionError(f"no /health: {logs.stdout}{logs.stderr}") from None
            time.sleep(0.5)
    assert health["status"] == "ok", health
    payments = f"http://127.0.0.1:{scenario.api_port}/payments/last5"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(payments, timeout=5)
    assert refused.value.code == 401
    request = urllib.request.Request(
        payments, headers={"Authorization": f"Bearer {scenario.api_token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (http only)
        assert len(json.load(response)["payments"]) == 5
    user = docker("exec", scenario.container, "id", "-u").stdout.strip()
    assert user == "10001"  # the API's process, and every command run beside it


def test_commands_of_the_local_stack_are_refused_in_one_line(scenario: Scenario) -> None:
    """The image leaves out the embedded Postgres and the demo data generator."""
    unset = scenario.totes("run", env=("TOTES_SOURCE_URL=", "TOTES_WAREHOUSE_URL="))
    assert unset.returncode == 2, unset
    assert "the embedded Postgres is not installed here" in unset.stdout + unset.stderr
    generated = scenario.totes("source", "init")
    assert generated.returncode == 2
    lines = [line for line in generated.stderr.splitlines() if "error" in line]
    assert lines == [
        "totes: error: `totes source init` needs faker, which this installation leaves out "
        "(the production image has no demo data or dashboard): run it from a checkout"
    ], generated.stderr
    assert query(scenario.inside.source_url, "select count(*) from sales_order")[0][0] > 0


def test_no_secret_build_tool_or_test_suite_is_in_the_image(
    image: Built, scenario: Scenario
) -> None:
    history = docker("history", "--no-trunc", IMAGE).stdout
    assert PLANTED not in history
    saved = image.context / "image.tar"
    docker("save", "--output", str(saved), IMAGE)
    tail = b""
    with saved.open("rb") as layers:
        while chunk := layers.read(1 << 24):
            assert PLANTED.encode() not in tail + chunk, "the planted password is in a layer"
            tail = chunk[-len(PLANTED) :]
    saved.unlink()
    found = docker(
        *("exec", scenario.container, "sh", "-c"),
        "command -v uv gcc cc g++ clang make; find / -xdev -type f -name uv; "
        "find /app/.venv -path '*/tests/*' -name 'test_*.py'",
        check=False,
    )
    assert found.stdout == "", found.stdout[:2000]
