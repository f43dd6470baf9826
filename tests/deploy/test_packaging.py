"""What the package declares: every library it imports, each pinned in the lock within its range;
and the pre-commit hooks, which run the tools of the lock without downloading anything."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OURS = {"shared", "services", "keten", "keten_client"}


def declared() -> dict[str, Requirement]:
    requirements = (Requirement(line) for line in PYPROJECT["project"]["dependencies"])
    return {canonicalize_name(r.name): r for r in requirements}


def pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def imported_libraries() -> dict[str, set[str]]:
    """Top-level modules of other projects that the installed packages import -> where."""
    found: dict[str, set[str]] = {}
    for package in sorted(OURS):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in OURS and top not in sys.stdlib_module_names and top != "__future__":
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_library_the_code_imports_is_a_declared_dependency():
    distributions = packages_distributions()
    undeclared = {
        module: sorted(paths)
        for module, paths in imported_libraries().items()
        if not {canonicalize_name(d) for d in distributions.get(module, [module])} & set(declared())
    }
    assert undeclared == {}, "add these to pyproject.toml's dependencies (and requirements.in)"


def test_every_declared_dependency_is_pinned_in_the_lock_within_its_range():
    pins = pinned()
    for name, requirement in declared().items():
        assert name in pins, f"{name} is not pinned in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])


def test_the_pre_commit_hooks_run_ruff_and_mypy_from_the_virtualenv():
    config_path = ROOT / ".pre-commit-config.yaml"
    pre_commit = Path(sys.executable).with_name("pre-commit")
    subprocess.run([str(pre_commit), "validate-config", str(config_path)], check=True)
    config = yaml.safe_load(config_path.read_text())
    assert {repo["repo"] for repo in config["repos"]} == {"local"}, "no hook repository to download"
    commands = sorted(
        " ".join(hook["entry"].split()[:2]).removesuffix(" --force-exclude")
        for repo in config["repos"]
        for hook in repo["hooks"]
    )
    assert commands == [".venv/bin/mypy", ".venv/bin/ruff check", ".venv/bin/ruff format"]
