"""The wheel on its own: built from the sources, installed alone into a fresh virtualenv (its
dependencies from the package registry, at the versions pinned in requirements.lock), and run
from a directory that holds no checkout. A dependency missing from pyproject.toml, a package or
data file left out of the wheel, or an import of the tests or the benchmark fails here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "keten", "keten_client")


def run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh virtualenv with the wheel installed, and an environment without the tests' settings."""
    base = tmp_path_factory.mktemp("wheel")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KETEN_", "COVERAGE_", "PYTHON", "VIRTUAL_ENV"))
        and key not in ("AMQP_URI", "DATABASE_URL", "DATABASE_SCHEMA", "GATEWAY_ADDRESS", "OPS_PORT")
    }
    # Only what the image copies: so nothing else of the checkout can end up in the wheel.
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    dist = base / "dist"
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(source)], base, env)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = dist.glob("keten-*.whl")

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    install = run([*pip, "install", "--constraint", str(ROOT / "requirements.lock"), str(wheel)], base, env)
    if install.returncode != 0:
        unavailable("installing the wheel's dependencies from the package registry", install.stderr[-3000:])
    return wheel, {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}


def test_the_wheel_holds_the_packages_and_their_data_but_not_the_benchmark(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    for package in PACKAGES:
        assert f"{package}/__init__.py" in names, package
    assert "shared/catalogue.yaml" in names
    assert any(name.startswith("services/notification/templates/") for name in names)
    assert not [name for name in names if name.startswith(("keten/bench", "tests/"))]


def test_keten_runs_from_the_wheel_alone(installed, tmp_path):
    _, env = installed
    code = "import keten, shared; print(keten.__file__, shared.__file__)"
    where = run(["python", "-c", code], tmp_path, env)
    assert where.returncode == 0, where.stderr
    assert "/venv/lib/" in where.stdout and str(ROOT) not in where.stdout

    helped = run(["keten", "--help"], tmp_path, env, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: keten")


def test_the_demo_runs_from_the_wheel_alone(installed, tmp_path):
    _, env = installed
    demo = run(["keten", "demo"], tmp_path, env, timeout=180)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "Started an embedded platform for the demo" in demo.stdout
    assert (
        "3. Gemeente Utrecht asked to share debts, income and allowances with Kredietbank Utrecht:"
        in demo.stdout
    )
    assert "   Shared: debts, income." in demo.stdout
    # The citizen's overview says the share was made, and how the citizen was told of it.
    told = r"deelde .* met Kredietbank Utrecht .*; u kreeg bericht via (email|letter|portal)\."
    assert re.search(told, demo.stdout), demo.stdout
    assert not list(tmp_path.iterdir()), "the demo leaves nothing behind in the working directory"


def test_the_benchmark_says_in_one_line_that_it_is_not_installed(installed, tmp_path):
    _, env = installed
    bench = run(["keten", "bench"], tmp_path, env, timeout=60)
    assert bench.returncode == 2
    assert bench.stderr.count("\n") == 1 and "not in this installation" in bench.stderr, bench.stderr
