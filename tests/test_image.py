"""The container image, checked offline (no Docker engine runs here; hadolint runs in `make
lint`): it must hold the whole dbt project, run `totes run` as a non-root user from pinned base
images, and never take local secrets or state into its build context."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO / "docker" / "Dockerfile").read_text()
FINAL_STAGE = DOCKERFILE.rsplit("\nFROM ", 1)[1]


def instructions(text: str, keyword: str) -> list[str]:
    return [line[len(keyword) + 1 :] for line in text.splitlines() if line.startswith(keyword)]


def test_the_image_holds_every_part_of_the_dbt_project() -> None:
    project = yaml.safe_load((REPO / "dbt_project.yml").read_text())
    paths = [
        path
        for key in ("model-paths", "seed-paths", "macro-paths", "analysis-paths", "test-paths")
        for path in project[key]
    ]
    copied = {part for line in instructions(FINAL_STAGE, "COPY") for part in line.split()}
    for path in [*paths, "dbt_project.yml", "profiles.yml"]:
        assert path in copied, f"{path} is not copied into the image"
    allowed = (REPO / ".dockerignore").read_text().splitlines()
    for path in paths:
        assert f"!{path}/" in allowed, f".dockerignore keeps {path} out of the build context"


def test_the_image_runs_totes_as_a_non_root_user_from_pinned_images() -> None:
    assert instructions(FINAL_STAGE, "ENTRYPOINT") == ['["totes"]']
    assert instructions(FINAL_STAGE, "CMD") == ['["run"]']
    (user,) = instructions(FINAL_STAGE, "USER")
    assert user.isdigit() and int(user) > 0
    for image in re.findall(r"^FROM (\S+)", DOCKERFILE, flags=re.MULTILINE):
        if image in ("uv",) or (":" not in image and "@" not in image):
            continue  # a stage of this file
        assert re.search(r"(:\d+\.\d+\.\d+[\w.-]*|@sha256:[0-9a-f]{64})$", image), image


def test_the_build_context_lets_in_only_what_the_image_needs() -> None:
    rules = [r for r in (REPO / ".dockerignore").read_text().splitlines() if r and r[0] != "#"]
    assert rules[0] == "*"  # everything is out unless named
    let_in = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert not let_in & {".env", ".totes", ".venv", ".git", "target", "logs"}


def test_the_compose_stack_wires_the_pipeline_to_its_two_databases() -> None:
    stack = yaml.safe_load((REPO / "docker" / "compose.yml").read_text())
    services = stack["services"]
    pipeline = services["pipeline"]
    assert pipeline["build"]["dockerfile"] == "docker/Dockerfile"
    hosts = {
        re.search(r"@([\w-]+):", pipeline["environment"][name]).group(1)  # type: ignore[union-attr]
        for name in ("TOTES_SOURCE_URL", "TOTES_WAREHOUSE_URL")
    }
    assert hosts == {"source", "warehouse"} and hosts <= set(services)
    assert pipeline["depends_on"]["source-init"]["condition"] == "service_completed_successfully"
    assert "--if-empty" in services["source-init"]["command"]  # restarts leave the data alone
