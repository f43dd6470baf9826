"""The alert on a tampered verifiable log fires, as Prometheus evaluates the shipped rules
(``promtool test rules``), when a relay reports what its check found; and stays quiet at 0."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.deploy.test_images_without_registry import promtool

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
ANNOTATIONS = {
    "summary": "The stored decisions of consent no longer match its verifiable log",
    "description": "The relay of consent checked its log against the stored events and found 2 leaves"
    " whose event was changed, deleted, moved or inserted, or a signed head the leaves do not make."
    " Someone changed the database behind the platform's back.",
    "runbook_url": "docs/operations.md#ketenlogtampered",
}


def test_keten_log_tampered_fires_once_a_relay_reports_a_finding(tmp_path: Path):
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'keten_log_verification_failures{service="consent"}', "values": "0 0 2 2"},
                    {
                        "series": 'keten_log_verification_failures{service="data_sharing"}',
                        "values": "0 0 0 0",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "KetenLogTampered", "exp_alerts": []},
                    {
                        "eval_time": "3m",
                        "alertname": "KetenLogTampered",
                        "exp_alerts": [
                            {
                                "exp_labels": {"service": "consent", "severity": "critical"},
                                "exp_annotations": ANNOTATIONS,
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "log-alert-test.yml"
    path.write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [promtool(), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
