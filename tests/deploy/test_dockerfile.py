"""docker/Dockerfile, read statically (no Docker engine here) plus its health check run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass

import pytest

from tests.deploy.compose import REPO
from tests.deploy.upstreams import Answer, running_upstream

DOCKERFILE = REPO / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / "docker" / "Dockerfile.dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, comments dropped and continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    result = []
    for text in logical:
        keyword, _, argument = text.partition(" ")
        result.append(Instruction(keyword.upper(), argument.strip()))
    return result


def runtime_stage() -> list[Instruction]:
    all_instructions = instructions()
    starts = [i for i, ins in enumerate(all_instructions) if ins.keyword == "FROM"]
    return all_instructions[starts[-1] :]


def test_base_image_is_slim_bookworm_python_311_pinned_to_a_patch_release() -> None:
    args = {
        ins.argument.partition("=")[0]: ins.argument.partition("=")[2]
        for ins in instructions()
        if ins.keyword == "ARG"
    }
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", args["PYTHON_IMAGE"])
    assert {ins.argument.split()[0] for ins in instructions() if ins.keyword == "FROM"} == {
        "${PYTHON_IMAGE}"
    }


def test_dependencies_install_from_the_lock_before_the_sources_are_copied() -> None:
    steps = [f"{ins.keyword} {ins.argument}" for ins in instructions()]
    copy_lock = steps.index("COPY pyproject.toml requirements.lock ./")
    install_deps = next(
        i for i, s in enumerate(steps) if "pip install -c requirements.lock -r" in s
    )
    copy_sources = steps.index("COPY . .")
    install_project = next(
        i for i, s in enumerate(steps) if "pip install -c requirements.lock ." in s
    )
    assert copy_lock < install_deps < copy_sources < install_project


def test_runtime_requirement_list_is_read_from_pyproject() -> None:
    # The one-liner the dependency layer runs, against this repository's pyproject.
    step = next(ins.argument for ins in instructions() if "tomllib" in ins.argument)
    script = re.search(r'python -c "(.*?)"\s+>', step)
    assert script is not None
    listed = subprocess.run(
        [sys.executable, "-c", script.group(1)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    expected = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert listed == expected


def test_runs_as_an_unprivileged_user() -> None:
    users = [ins.argument for ins in runtime_stage() if ins.keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000


def test_runtime_stage_gets_the_virtualenv_and_nothing_else_from_the_build() -> None:
    copies = [ins.argument for ins in runtime_stage() if ins.keyword == "COPY"]
    assert copies == ["--from=build /opt/orthanc-share /opt/orthanc-share"]


def healthcheck_command() -> list[str]:
    check = next(ins.argument for ins in runtime_stage() if ins.keyword == "HEALTHCHECK")
    _, _, exec_form = check.partition("CMD ")
    command = json.loads(exec_form)
    assert isinstance(command, list)
    return [str(part) for part in command]


@pytest.mark.e2e
@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_passes_only_on_a_healthy_answer(status: int, healthy: bool) -> None:
    with running_upstream("app", lambda _: Answer(status=status)) as app:
        command = [part.replace("127.0.0.1:8000", app.address) for part in healthcheck_command()]
        command[0] = sys.executable
        result = subprocess.run(command, capture_output=True, timeout=30)
    assert (result.returncode == 0) is healthy
    assert [r.path for r in app.received] == ["/health"]


def test_build_context_is_an_allowlist() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "requirements.lock",
        "README.md",
        "LICENSE",
        "shared",
        "token_service",
        "share_landing",
        "anonymizer",
    }
    # Every package setuptools installs is in the context.
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for pattern in packages["packages"]["find"]["include"]:
        assert pattern.rstrip("*") in allowed
