"""The Dockerfile, read without building it (tests/test_container.py builds and runs it;
hadolint runs in `make lint`): it must hold the whole dbt project, run `totes run` as a non-root
user from pinned base images, and never take local secrets or state into its build context."""

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
    # the build stage copies the whole build context into /app, and the runtime stage copies
    # /app whole: what .dockerignore lets in is what the image holds
    build_stage = DOCKERFILE.split(" AS build\n", 1)[1].split("\nFROM ", 1)[0]
    assert ". ./" in instructions(build_stage, "COPY")
    assert "--from=build /app ./" in instructions(FINAL_STAGE, "COPY")
    allowed = (REPO / ".dockerignore").read_text().splitlines()
    assert allowed[1] == "*"  # after its comment: nothing gets in unless let in below
    for path in paths:
        assert f"!{path}/" in allowed, f".dockerignore keeps {path} out of the build context"
    for path in ("dbt_project.yml", "profiles.yml"):
        assert f"!{path}" in allowed, f".dockerignore keeps {path} out of the build context"


def test_the_image_runs_totes_as_a_non_root_user_from_pinned_images() -> None:
    assert instructions(FINAL_STAGE, "ENTRYPOINT") == ['["totes"]']
    assert instructions(FINAL_STAGE, "CMD") == ['["run"]']
    (user,) = instructions(FINAL_STAGE, "USER")
    assert user.isdigit() and int(user) > 0
    # every base image is a build argument whose default is pinned to a release or a digest
    defaults = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", DOCKERFILE, flags=re.MULTILINE))
    for argument in re.findall(r"^FROM \$\{(\w+)\}", DOCKERFILE, flags=re.MULTILINE):
        image = defaults[argument]
        assert re.search(r"(:\d+\.\d+\.\d+[\w.-]*|@sha256:[0-9a-f]{64})$", image), image
    assert len(defaults) == 3 and not re.search(r"^FROM (?!\$)", DOCKERFILE, flags=re.MULTILINE)


def test_the_build_context_lets_in_only_what_the_image_needs() -> None:
    rules = [r for r in (REPO / ".dockerignore").read_text().splitlines() if r and r[0] != "#"]
    assert rules[0] == "*"  # everything is out unless named
    let_in = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert not let_in & {".env", ".totes", ".venv", ".git", "target", "logs"}
