"""The README, run as a new user runs it: a fresh clone, `make demo`, then each shell block in
order, in a shell where `. .venv/bin/activate` was run, as the README says.

The README marks what this test does with a block:

- a ```sh block runs (`bash -e -o pipefail`) and must exit 0;
- a ```text block right after it is its expected output: each non-blank line must appear in
  what the block printed (runs of spaces count as one);
- `<!-- not run by the README test: why -->` on the line before a fence leaves it out (AWS,
  Docker, `make test` itself);
- `<!-- serves: URL -->` before a fence: the block serves until stopped, so it is started,
  must answer 200 at URL, and is stopped;
- `<!-- run while the server above serves -->` before a fence: the block runs (as a ```sh
  block does) while the last `serves` block is up, before that one is stopped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, checkout_files, free_port

NOT_RUN = re.compile(r"<!-- not run by the README test: (.+\S) -->")
SERVES = re.compile(r"<!-- serves: (\S+) -->")
WHILE_SERVING = "<!-- run while the server above serves -->"
# what `make demo` suggests at its end: "  <command>   # <what it is>"
SUGGESTED = re.compile(r"^ {2}(\S.*?)\s+# ")


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    code: str
    expected: list[str]
    not_run: str | None  # the reason
    serves: str | None  # the URL that answers once it is up
    while_serving: list[Block] = field(default_factory=list)  # run before it is stopped


def readme_blocks(text: str) -> list[Block]:
    """The README's ```sh blocks, each with its marker and its expected output."""
    raw = text.splitlines()
    lines = [line.strip() for line in raw]  # a fence may be indented, in a list
    blocks: list[Block] = []
    last: Block  # the last sh block read, which a text block may follow
    sh_closed = -1  # the line of the last sh block's closing fence
    index = 0
    while index < len(lines):
        fence = lines[index]
        if not fence.startswith("```") or fence == "```":
            index += 1
            continue
        end = lines.index("```", index + 1)
        body = "\n".join(raw[index + 1 : end])
        language = fence[3:].strip()
        marker = lines[index - 1] if index else ""
        if language == "sh":
            not_run, serves = NOT_RUN.fullmatch(marker), SERVES.fullmatch(marker)
            last = Block(
                index + 1,
                body,
                [],
                not_run.group(1) if not_run else None,
                serves.group(1) if serves else None,
            )
            if marker == WHILE_SERVING:
                server = next((block for block in reversed(blocks) if block.serves), None)
                assert server, f"README.md:{index + 1}: no block above serves"
                server.while_serving.append(last)
            else:
                blocks.append(last)
            sh_closed = end
        elif language == "text" and blocks and not any(lines[sh_closed + 1 : index]):
            # only blank lines since the last sh block: this is its output
            last.expected = [squeeze(line) for line in body.splitlines() if line.strip()]
        index = end + 1
    return blocks


def squeeze(line: str) -> str:
    return " ".join(line.split())


def test_readme_blocks_are_read_with_their_markers_and_outputs() -> None:
    text = "\n".join(
        [
            "```sh",
            "totes status",
            "```",
            "",
            "```text",
            "  a    b",
            "```",
            "<!-- not run by the README test: needs AWS -->",
            "```sh",
            "make deploy",
            "```",
            "<!-- serves: http://127.0.0.1:8000/health -->",
            "```sh",
            "totes api",
            "```",
            "<!-- run while the server above serves -->",
            "```sh",
            "curl http://127.0.0.1:8000/payments/last5",
            "```",
            "```text",
            "payments",
            "```",
            "- in a list:",
            "  ```sh",
            "  totes run",
            "  ```",
            "```dotenv",
            "TOTES_LOG_FORMAT=json",
            "```",
            "```text",
            "not an output: it follows no sh block",
            "```",
        ]
    )
    status, deploy, api, listed = readme_blocks(text)
    assert (status.code, status.expected, status.not_run) == ("totes status", ["a b"], None)
    assert (deploy.not_run, deploy.expected) == ("needs AWS", [])
    assert (api.serves, api.not_run, api.expected) == ("http://127.0.0.1:8000/health", None, [])
    (curl,) = api.while_serving
    assert (curl.code, curl.expected, curl.serves) == (
        "curl http://127.0.0.1:8000/payments/last5",
        ["payments"],
        None,
    )
    assert (listed.code.strip(), listed.expected) == ("totes run", [])


def test_a_block_fails_on_a_non_zero_exit_or_an_output_it_did_not_print(tmp_path: Path) -> None:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "activate").write_text("export ACTIVATED=yes\n")
    env = dict(os.environ)

    def block(code: str, *expected: str) -> Block:
        return Block(1, code, list(expected), None, None)

    assert _run(block('echo "a    $ACTIVATED"', "a yes"), tmp_path, env) is None
    assert "exit 3" in str(_run(block("echo hi; exit 3"), tmp_path, env))
    assert "exit 1" in str(_run(block("false | cat"), tmp_path, env))  # pipefail
    assert "exit 1" in str(_run(block("false\necho after"), tmp_path, env))  # -e
    assert "did not print ['bye']" in str(_run(block("echo hi", "hi", "bye"), tmp_path, env))


@dataclass
class Demo:
    output: str
    seconds: float


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone of this checkout, with its uncommitted changes: what is tested is what is
    about to be committed."""
    folder = tmp_path_factory.mktemp("readme") / "totes"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(folder)], check=True)
    checkout_files(folder)
    return folder


@pytest.fixture(scope="module")
def user_environment() -> dict[str, str]:
    """A user's shell: none of the test's own settings or virtual environment, and the embedded
    stack on a port of its own (a developer's demo may hold the default one)."""
    venv = os.environ.get("VIRTUAL_ENV")
    path = [
        entry
        for entry in os.environ["PATH"].split(os.pathsep)
        if not (venv and entry.startswith(venv)) and not entry.startswith(str(REPO))
    ]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TOTES_", "DBT_", "PYTEST_", "VIRTUAL_ENV"))
    }
    env.update(PATH=os.pathsep.join(path), TOTES_LOCAL_PORT=str(free_port()))
    return env


@pytest.fixture(scope="module")
def demo(clone: Path, user_environment: dict[str, str]) -> Iterator[Demo]:
    """`make demo` in the clone, as the README's quick start says; its stack is stopped after."""
    started = time.monotonic()
    made = subprocess.run(
        ["make", "demo"],
        cwd=clone,
        env=user_environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert made.returncode == 0, f"make demo failed:\n{made.stdout[-3000:]}\n{made.stderr[-3000:]}"
    yield Demo(made.stdout, time.monotonic() - started)
    subprocess.run(
        ["bash", "-c", ". .venv/bin/activate && totes local down"],
        cwd=clone,
        env=user_environment,
        capture_output=True,
        timeout=120,
    )


def test_every_shell_block_of_the_readme_works_after_make_demo(
    clone: Path,
    user_environment: dict[str, str],
    demo: Demo,
    record_property: pytest.RecordProperty,
) -> None:
    started = time.monotonic()
    blocks = readme_blocks((clone / "README.md").read_text())
    assert sum(1 for block in blocks if block.not_run is None) >= 10, "the README runs no commands"
    failures = []
    for block in blocks:
        if block.not_run is not None:
            continue
        where = f"README.md:{block.line}"
        if block.serves:
            failure = _serve(block, clone, user_environment)
        else:
            failure = _run(block, clone, user_environment)
        if failure:
            failures.append(f"{where}: {failure}")
    assert not failures, "\n\n".join(failures)
    record_property(
        "figure",
        f"make demo in a fresh clone {demo.seconds:.0f} s, "
        f"then the README's blocks {time.monotonic() - started:.0f} s",
    )


def test_the_commands_make_demo_suggests_are_in_the_readme(clone: Path, demo: Demo) -> None:
    said = demo.output
    suggested = [match.group(1) for line in said.splitlines() if (match := SUGGESTED.match(line))]
    assert suggested, f"make demo suggests nothing to do next:\n{said[-1500:]}"
    readme = (clone / "README.md").read_text()
    run = "\n".join(block.code for block in readme_blocks(readme) if block.not_run is None)
    missing = [command for command in suggested if command not in run]
    assert not missing, f"make demo suggests commands that the README does not run: {missing}"


def _run(block: Block, clone: Path, env: dict[str, str]) -> str | None:
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", f". .venv/bin/activate\n{block.code}"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    said = done.stdout + done.stderr
    if done.returncode != 0:
        return f"exit {done.returncode} from\n{block.code}\n--- it said:\n{said[-2000:]}"
    printed = "\n".join(squeeze(line) for line in said.splitlines())
    missing = [line for line in block.expected if line not in printed]
    if missing:
        return f"{block.code}\ndid not print {missing}\n--- it said:\n{said[-2000:]}"
    return None


def _serve(block: Block, clone: Path, env: dict[str, str]) -> str | None:
    assert block.serves
    if _answers(block.serves):
        return f"something already answers at {block.serves}: stop it, then test again"
    log = clone / ".totes" / "readme-server.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            ["bash", "-e", "-c", f". .venv/bin/activate\n{block.code}"],
            cwd=clone,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its children (make, streamlit) stop with it
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if server.poll() is not None:
                return f"{block.code} exited {server.returncode}:\n{log.read_text()[-2000:]}"
            if _answers(block.serves):
                for inner in block.while_serving:
                    if failure := _run(inner, clone, env):
                        return f"README.md:{inner.line}, while it serves: {failure}"
                return None
            time.sleep(0.5)
        return f"{block.code} did not answer 200 at {block.serves} within 120 s"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def _answers(url: str) -> bool:
    """Whether `url` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (the README's http URL)
            return bool(answer.status == 200)
    except OSError:
        return False
