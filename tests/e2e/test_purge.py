"""Retention on the embedded platform: `keten purge` on the demo data, and the service's timer."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from keten.demo import CITIZEN, SHARED_SENTENCE, run_demo
from shared.catalogue import DEFAULT_PATH
from shared.pseudonym import pseudonymise
from tests.support import eventually, running_platform, sqlite_dump

pytestmark = pytest.mark.e2e

PERSONAL = (CITIZEN["bsn"], CITIZEN["name"], CITIZEN["email"], SHARED_SENTENCE)


def keten(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keten.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def citizens_cases(base_url: str) -> list[dict]:
    token = requests.post(f"{base_url}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=5).json()[
        "token"
    ]
    overview = requests.get(
        f"{base_url}/api/citizen/overview?lang=en", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    return overview.json()["cases"]  # type: ignore[no-any-return]


def test_keten_purge_lists_then_purges_the_demo_data_of_a_running_platform(embedded_env):
    three_years_on = (datetime.now(UTC) + timedelta(days=3 * 366)).date().isoformat()
    with running_platform(embedded_env) as platform:
        result = run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())
        assert [r["status"] for r in result.schedule] == ["scheduled", "kept", "scheduled"]

        dry = keten(embedded_env, "purge", "--dry-run", "--as-of", three_years_on)
        assert dry.returncode == 0, dry.stderr[-2000:]
        listed = dry.stdout.splitlines()
        assert [line.split()[3] for line in listed[:-1]] == ["case_records", "share_records"]
        assert all(result.case_id in line for line in listed[:-1])
        assert "2 scope(s) due for purging" in listed[-1] and "nothing was purged" in listed[-1]
        subject = pseudonymise(CITIZEN["bsn"], platform.settings.pseudonym_secret)
        for personal in (*PERSONAL, subject):
            assert personal not in dry.stdout + dry.stderr
        retention = platform.app("retention")
        assert len(retention.vault.keys.live_keys(result.case_id)) == 2, "a dry run changes nothing"

        purge = keten(embedded_env, "purge", "--as-of", three_years_on)
        assert purge.returncode == 0, purge.stderr[-2000:]
        assert "Purged 2 scope(s) (case_records: 1, share_records: 1)" in purge.stdout
        assert "purging" in purge.stderr, "a progress bar"

        def overview_shows_the_purge() -> dict | None:
            [case] = citizens_cases(platform.base_url)
            return case if len(case["purged"]) == 2 else None

        case = eventually(overview_shows_the_purge)
        [share] = case["shares"]
        assert (share["from_name"], share["to_name"], share["sender_ground"]) == (
            "Gemeente Utrecht",
            "Kredietbank Utrecht",
            "statutory_task",
        )
        assert share["content"] is None and share["purged_at"]
        assert retention.vault.keys.live_keys(result.case_id) == []
        for service in ("consent", "data_sharing", "notification", "retention"):
            eventually(lambda s=service: platform.app(s).cases.get(result.case_id) is None)

        again = keten(embedded_env, "purge", "--as-of", three_years_on, "--no-progress")
        assert "Purged 0 scope(s)" in again.stdout

    stored = sqlite_dump(embedded_env["KETEN_VAR_DIR"])
    for value in PERSONAL:
        assert value.encode() not in stored


def test_the_retention_service_purges_on_its_timer_when_records_fall_due(embedded_env, tmp_path, monkeypatch):
    catalogue = yaml.safe_load(DEFAULT_PATH.read_text())
    for retention_class in catalogue["retention_classes"]:
        rules = retention_class["versions"][0]["rules"]
        rules["case_records"]["keep"] = rules["share_records"]["keep"] = "P0D"
    path = Path(tmp_path / "catalogue.yaml")
    path.write_text(yaml.safe_dump(catalogue))
    monkeypatch.setenv("KETEN_CATALOGUE", str(path))
    env = {**embedded_env, "KETEN_PURGE_INTERVAL": "0.2"}

    with running_platform(env) as platform:
        result = run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())

        def everything_purged() -> dict | None:
            [case] = citizens_cases(platform.base_url)
            return (
                case
                if {p["record_kind"] for p in case["purged"]} == {"case_records", "share_records"}
                else None
            )

        case = eventually(everything_purged, timeout=30)
        assert case["status"] == "closed" and case["outcome"] == "help_arranged"
        assert platform.app("retention").vault.keys.live_keys(result.case_id) == []
        metrics = requests.get(f"{platform.base_url}/metrics", timeout=5).text
        assert 'keten_purges_total{record_kind="share_records"}' in metrics
        assert "keten_purges_due " in metrics
