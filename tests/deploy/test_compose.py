"""docker-compose.yml read without a Docker engine: valid against the Compose specification,
every long-running service healthy before its dependants start, and its settings the ones the
code reads. tests/deploy/test_stack.py runs it for real."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from keten.platform import SERVICES
from shared.catalogue import catalogue_path
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


class RecordingEnv(dict):
    """An environment that remembers every name the configuration asks for."""

    def __init__(self) -> None:
        super().__init__(DATABASE_URL="sqlite://memory")
        self.asked: set[str] = set()

    def get(self, name: str, default: Any = None) -> Any:
        self.asked.add(name)
        return super().get(name, default)


@cache
def known_settings() -> frozenset[str]:
    """Every environment variable ``shared.config`` reads: the code's own list of settings."""
    env = RecordingEnv()
    Settings.from_env(env)
    catalogue_path(env)
    return frozenset(env.asked)


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def keten_services() -> dict[str, dict[str, Any]]:
    """Compose services that run the Keten image, by their Keten command."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("command", [None])[0] == "keten"
    }


def long_running() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if s.get("restart") != "no"}


def test_the_compose_file_is_valid_against_the_compose_specification():
    checker = Path(sys.executable).with_name("check-jsonschema")
    assert checker.exists(), "check-jsonschema comes with requirements-dev.lock"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_keten_service_runs_in_its_own_container_and_the_migration_runs_once_first():
    commands = {tuple(s["command"][1:]) for s in keten_services().values()}
    assert commands == {("migrate",)} | {("run", name) for name in SERVICES}
    migrate = compose()["services"]["migrate"]
    assert migrate["restart"] == "no"
    for name, service in keten_services().items():
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_every_long_running_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    services = long_running()
    assert {"rabbitmq", "postgres", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            assert condition == {"condition": expected}, f"{name} -> {dependency}"
    for name, service in keten_services().items():
        if name != "migrate":
            assert service["healthcheck"]["test"] == ["CMD", "keten", "probe", "ready"]


def test_keten_containers_set_only_settings_the_code_reads_and_every_one_it_requires():
    required = {"AMQP_URI", "DATABASE_URL", "KETEN_MASTER_KEY", "KETEN_PSEUDONYM_SECRET", "OPS_PORT"}
    for name, service in keten_services().items():
        environment = service["environment"]
        assert set(environment) <= known_settings(), f"{name} sets what no code reads"
        assert required <= set(environment), name
        assert environment["AMQP_URI"].startswith("amqp://") and "@rabbitmq:5672/" in environment["AMQP_URI"]
        assert environment["DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in environment["DATABASE_URL"]


def test_prometheus_scrapes_every_service_on_the_port_it_serves_metrics_on():
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [keten_job] = [job for job in prometheus["scrape_configs"] if job["job_name"] == "keten"]
    targets = set(keten_job["static_configs"][0]["targets"])
    expected = {
        f"{name}:{s['environment']['OPS_PORT']}" for name, s in keten_services().items() if name != "migrate"
    }
    assert targets == expected
    assert {"rabbitmq:15692"} == set(
        next(job for job in prometheus["scrape_configs"] if job["job_name"] == "rabbitmq")["static_configs"][
            0
        ]["targets"]
    )
    assert "/etc/prometheus/alerts.yml" in prometheus["rule_files"]
    mounts = compose()["services"]["prometheus"]["volumes"]
    assert any(m.startswith("./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml") for m in mounts)
    plugins = (ROOT / "deploy" / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_prometheus" in plugins and "rabbitmq_management" in plugins


def test_the_gateway_listens_on_the_port_compose_publishes():
    gateway = compose()["services"]["gateway"]
    host, port = gateway["environment"]["GATEWAY_ADDRESS"].rsplit(":", 1)
    assert host == "0.0.0.0"  # noqa: S104 - inside its container, published on 127.0.0.1 below
    assert gateway["ports"] == [f"127.0.0.1:${{GATEWAY_PORT:-{port}}}:{port}"]
    for name, service in compose()["services"].items():
        for published in service.get("ports", []):
            assert published.startswith("127.0.0.1:"), f"{name} publishes beyond this machine"


def test_env_example_names_every_variable_compose_needs_and_holds_no_secret():
    text = COMPOSE.read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert used == set(example)
    for name, value in example.items():
        if any(word in name for word in ("KEY", "SECRET", "PASSWORD")):
            assert value == "", f"{name} must be left empty in .env.example"
    assert ".env" in (ROOT / ".gitignore").read_text().split()
