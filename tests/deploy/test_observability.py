"""The Grafana dashboard and the Prometheus alert rules, held to the metrics the code exports
and to the runbook that says what each alert means."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

from shared import metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "keten-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
RUNBOOK = ROOT / "docs" / "operations.md"


def exported_series() -> set[str]:
    """Every series name the platform's metrics export (counters with _total, histograms
    with _bucket/_count/_sum)."""
    names = set()
    for collector in list(REGISTRY._collector_to_names):  # type: ignore[attr-defined]
        names.update(REGISTRY._collector_to_names[collector])  # type: ignore[attr-defined]
    return {name for name in names if name.startswith("keten_")}


def keten_metrics_in(expression: str) -> set[str]:
    return set(re.findall(r"\b(keten_[a-z_]+)", expression))


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_the_dashboard_shows_every_metric_the_issue_asks_for_and_only_metrics_that_exist():
    used = set().union(*(keten_metrics_in(expr) for expr in dashboard_expressions()))
    known = exported_series()
    assert used <= known, f"the dashboard queries metrics nobody exports: {used - known}"
    for wanted in (
        "keten_messages_handled_total",
        "keten_message_handling_seconds_bucket",
        "keten_share_decisions_total",
        "keten_notifications_total",
        "keten_relay_lag_events",
        "keten_purges_total",
        "keten_purges_due",
        "keten_dead_letters_total",
        "keten_requests_total",
        "keten_request_seconds_bucket",
    ):
        assert wanted in used, f"the dashboard lacks {wanted}"


def test_the_dashboard_is_grafana_json_with_a_data_source_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "keten-overview"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_alert_queries_existing_metrics_and_points_to_its_section_in_the_runbook():
    runbook = RUNBOOK.read_text()
    headings = set(re.findall(r"^### (\w+)$", runbook, flags=re.MULTILINE))
    known = exported_series()
    rules = alert_rules()
    assert len(rules) >= 10
    for rule in rules:
        name = rule["alert"]
        assert keten_metrics_in(rule["expr"]) <= known, name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}", name
        assert name in headings, f"docs/operations.md has no section '### {name}'"


def test_alert_and_dashboard_queries_group_only_by_labels_the_metrics_carry():
    allowed = metrics.LABEL_NAMES | {"le", "queue", "instance", "job"}
    expressions = dashboard_expressions() + [rule["expr"] for rule in alert_rules()]
    for expression in expressions:
        for group in re.findall(r"by \(([^)]*)\)", expression):
            labels = {label.strip() for label in group.split(",")}
            assert labels <= allowed, expression


def test_every_metric_label_comes_from_a_fixed_vocabulary_never_from_a_person():
    for collector in list(REGISTRY._collector_to_names):  # type: ignore[attr-defined]
        name = getattr(collector, "_name", "")
        if name.startswith("keten_"):
            labels = set(collector._labelnames)  # type: ignore[attr-defined]
            assert labels <= metrics.LABEL_NAMES, f"{name} has labels {labels - metrics.LABEL_NAMES}"
    assert not metrics.LABEL_NAMES & {"bsn", "subject", "name", "email", "case_id", "share_id", "agency_user"}
