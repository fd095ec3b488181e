"""`make deploy`'s script, run against stand-ins for aws, terraform, docker and make (none of
them can reach AWS here). The stand-ins record their arguments, so the tests see the order of
the steps: the repository exists before the push, the image before the stack that runs it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "terraform" / "deploy.sh"
REPOSITORY = "111111111111.dkr.ecr.eu-west-2.amazonaws.com/totes"

STAND_IN = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
cat > /dev/null  # read what is piped in, as docker login does
case "$(basename "$0") $*" in
  "aws sts get-caller-identity"*) echo 111111111111 ;;
  "aws s3api head-bucket"*) exit "$STATE_MISSING" ;;
  "aws ecr describe-images"*) exit "$IMAGE_MISSING" ;;
  "aws ecr get-login-password"*) echo token ;;
  "terraform -chdir=terraform output -raw ecr_repository_url") echo "$REPOSITORY" ;;
  "terraform -chdir=terraform output -raw docs_url") echo s3://processed/docs/index.html ;;
esac
"""


def deploy(
    tmp_path: Path,
    *,
    state: bool,
    image: bool,
    tools: tuple[str, ...] = ("aws", "terraform", "docker", "make"),
    **env: str,
) -> tuple[int, str, list[str]]:
    """Run deploy.sh with stand-ins for `tools` and only the system's basics (git, bash) besides;
    return its exit code, stderr and the stand-ins' calls in order."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "bash", "cat", "date", "basename", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    for tool in tools:
        (bin_dir / tool).write_text(STAND_IN)
        (bin_dir / tool).chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    environ = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "CALLS": str(calls),
        "REPOSITORY": REPOSITORY,
        "STATE_MISSING": "0" if state else "1",
        "IMAGE_MISSING": "0" if image else "1",
        **env,
    }
    done = subprocess.run(
        [DEPLOY],
        env=environ,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stderr, calls.read_text().splitlines()


def index(calls: list[str], start: str) -> int:
    (found,) = [i for i, call in enumerate(calls) if call.startswith(start)]
    return found


def test_a_first_deploy_bootstraps_then_pushes_the_image_before_the_stack_uses_it(
    tmp_path: Path,
) -> None:
    code, stderr, calls = deploy(tmp_path, state=False, image=False, ALERT_EMAIL="ops@example.com")
    assert code == 0, stderr
    bootstrap = index(calls, "terraform -chdir=terraform/bootstrap apply")
    init = index(calls, "terraform -chdir=terraform init")
    assert "bucket=totes-tfstate-111111111111-eu-west-2" in calls[init]
    registry = index(calls, "terraform -chdir=terraform apply -input=false -auto-approve -var")
    assert "-target=aws_ecr_repository.pipeline" in calls[registry]
    build = index(calls, "docker build")
    push = index(calls, "docker push")
    stack = [
        i for i, call in enumerate(calls) if call.startswith("terraform -chdir=terraform apply")
    ][-1]
    assert bootstrap < init < registry < build < push < stack
    tag = calls[push].rsplit(":", 1)[1]
    assert f"image_tag={tag}" in calls[stack] and "alert_email=ops@example.com" in calls[stack]
    assert "-target" not in calls[stack] and "-auto-approve" not in calls[stack]
    assert calls[index(calls, "aws s3 cp")].startswith(
        "aws s3 cp target/static_index.html s3://processed/docs/index.html"
    )


def test_a_later_deploy_reuses_the_state_and_an_image_already_pushed(tmp_path: Path) -> None:
    code, stderr, calls = deploy(
        tmp_path, state=True, image=True, ALERT_EMAIL="ops@example.com", AUTO_APPROVE="1"
    )
    assert code == 0, stderr
    assert not [call for call in calls if "bootstrap" in call or call.startswith("docker")]
    assert "-auto-approve" in calls[index(calls, "make docs") - 1]


@pytest.mark.parametrize(
    ("env", "missing_tool", "message"),
    [
        ({}, None, "set ALERT_EMAIL"),
        ({"ALERT_EMAIL": "ops@example.com"}, "docker", "docker is not installed"),
    ],
)
def test_deploy_stops_before_touching_aws_when_it_cannot_finish(
    tmp_path: Path, env: dict[str, str], missing_tool: str | None, message: str
) -> None:
    tools = tuple(t for t in ("aws", "terraform", "docker", "make") if t != missing_tool)
    code, stderr, calls = deploy(tmp_path, state=True, image=True, tools=tools, **env)
    assert code == 2 and message in stderr
    assert calls == []
