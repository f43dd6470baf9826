"""The images made from Debian's packages (deploy/images/) and the shipped Prometheus files, read
and linted without a Docker engine; tests/deploy/test_stack.py builds and runs them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "deploy" / "images"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))


def compose_services() -> dict[str, dict]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        message = "promtool (Debian's prometheus package) is missing; `make test` installs it"
        if IN_CI:
            pytest.fail(message + " and CI=true forbids skipping", pytrace=False)
        pytest.skip(message)
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_hadolint_finds_nothing_to_improve_in_the_base_images(dockerfile: Path):
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run([str(hadolint), str(dockerfile)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_image_of_the_compose_file_floats_on_latest():
    for name, service in compose_services().items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name


def test_each_image_built_from_debian_packages_is_tagged_with_the_version_its_build_checks():
    """The tag says RabbitMQ 3.10, PostgreSQL 15, Prometheus 2.42 because the Dockerfile fails
    the build when Debian's package is another version."""
    built = {name: s for name, s in compose_services().items() if "build" in s and name != "migrate"}
    assert {"rabbitmq", "postgres", "prometheus"} <= set(built)
    for name, service in built.items():
        if service["build"].get("dockerfile") == "deploy/Dockerfile":
            continue  # Keten's own image
        context = ROOT / service["build"]["context"]
        assert context.parent == IMAGES, name
        text = (context / "Dockerfile").read_text()
        [(_, version)] = re.findall(r"^ARG (\w+)_VERSION=([\d.]+)$", text, flags=re.MULTILINE)
        assert re.search(r'grep -q "\^\$\{\w+_VERSION\}\\\.', text), f"{name}: the version is not checked"
        repository, tag = service["image"].split(":")
        assert repository == f"keten-local/{name}", name
        assert tag == f"{version}-debian12", name
        assert service["build"]["args"] == {"DEBIAN_IMAGE": "${DEBIAN_IMAGE:-debian:bookworm-slim}"}


def test_the_python_base_offers_what_the_keten_dockerfile_uses():
    python = (IMAGES / "python" / "Dockerfile").read_text()
    for package in ("python3.11", "python3.11-venv", "python-is-python3", "ca-certificates", "passwd"):
        assert re.search(rf"\s{re.escape(package)}(\s|$)", python), package
    keten = (ROOT / "deploy" / "Dockerfile").read_text()
    for used in ("python -m venv", "update-ca-certificates", "groupadd", "useradd"):
        assert used in keten, used
    script = (IMAGES / "build-base.sh").read_text()
    assert "debootstrap --variant=minbase" in script and "docker import" in script
    assert "keten-local/python:3.11-debian12" in (ROOT / "Makefile").read_text()


def test_the_keten_build_trusts_extra_ca_certificates_in_its_build_stage_only():
    stages = re.split(r"^FROM ", (ROOT / "deploy" / "Dockerfile").read_text(), flags=re.MULTILINE)[1:]
    build, runtime = stages
    assert "COPY deploy/ca-certificates/ /usr/local/share/ca-certificates/" in build
    assert "ca-certificates" not in runtime.replace("org.opencontainers", "")
    # The legacy builder and docker-compose 1.29 read only .dockerignore at the context's root.
    assert "!deploy/ca-certificates/" in (ROOT / ".dockerignore").read_text().splitlines()
    assert "deploy/ca-certificates/*.crt" in (ROOT / ".gitignore").read_text().splitlines()
    assert "# syntax=" not in (ROOT / "deploy" / "Dockerfile").read_text()  # it would pull from a registry


def test_promtool_accepts_the_alert_rules():
    result = subprocess.run(
        [promtool(), "check", "rules", str(ROOT / "deploy" / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    count = sum(len(group["rules"]) for group in rules["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_accepts_the_prometheus_config():
    """Its syntax here; tests/deploy/test_stack.py checks it in full (rule files included) where
    Prometheus reads it, inside the running container."""
    result = subprocess.run(
        [
            promtool(),
            "check",
            "config",
            "--syntax-only",
            str(ROOT / "deploy" / "prometheus" / "prometheus.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
