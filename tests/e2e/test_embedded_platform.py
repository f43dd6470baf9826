"""The whole platform on its embedded default: what `make run` and `make demo` give a newcomer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from keten.children import stop_with_parent
from keten.demo import CITIZEN, SHARED_SENTENCE, run_demo
from tests.conftest import free_port
from tests.support import eventually, running_platform, sqlite_dump

pytestmark = pytest.mark.e2e


def test_a_share_reaches_the_citizens_overview_on_the_embedded_platform(embedded_env):
    printed: list[str] = []
    with running_platform(embedded_env) as platform:
        result = run_demo(platform.base_url, out=printed.append, credentials=platform.credentials())
        # No mail server is configured: the citizen, who chose e-mail, gets a letter instead.
        letters = Path(embedded_env["KETEN_VAR_DIR"]) / "letters"
        eventually(lambda: list(letters.glob("*.pdf")), timeout=20)
        told = eventually(lambda: _notification(platform, result.share_id)["status"] == "sent")
        told = _notification(platform, result.share_id)

    [case] = result.overview["cases"]
    assert case["contact_point"] == {
        "agency": "gemeente-utrecht",
        "function": "casusregisseur schulden",
        "agency_name": "Gemeente Utrecht",
    }
    [share] = case["shares"]
    assert (share["from_name"], share["to_name"]) == ("Gemeente Utrecht", "Kredietbank Utrecht")
    assert share["category_labels"] == ["schulden en betalingsachterstanden", "inkomen en uitkering"]
    assert share["content"]["content"] == SHARED_SENTENCE
    assert share["notification"]["channel"] == "letter" and told["channel"] == "letter"
    assert any("Kredietbank Utrecht" in line for line in printed)
    # the demo's request is partly shared: the allowances the agreement holds back, shown beside
    [refusal] = case["refusals"]
    assert (refusal["categories"], refusal["reason_code"], refusal["beside_share"]) == (
        ["allowances"],
        "category_not_brought",
        True,
    )
    assert any(line.strip() == "partial, decided per category." for line in printed)
    assert any(line.strip().startswith("Not shared: allowances") for line in printed)
    assert any("Niet gedeeld: " in line for line in printed), printed

    stored = sqlite_dump(embedded_env["KETEN_VAR_DIR"])
    for value in (CITIZEN["bsn"], CITIZEN["name"], CITIZEN["email"], SHARED_SENTENCE):
        assert value.encode() not in stored, "personal data must be stored only encrypted"


def test_keten_run_serves_health_for_all_five_services_within_30_seconds(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "KETEN_VAR_DIR": str(tmp_path / "var"), "GATEWAY_ADDRESS": address}
    for name in ("AMQP_URI", "DATABASE_URL"):
        env.pop(name, None)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "keten.cli", "run"],
        env=env,
        stderr=subprocess.PIPE,
        preexec_fn=stop_with_parent,
    )
    try:
        health = None
        while time.monotonic() - started < 30:
            try:
                health = requests.get(f"http://{address}/health", timeout=2)
                if health.status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        assert health is not None and health.status_code == 200
        assert sorted(health.json()["services"]) == [
            "case_registration",
            "consent",
            "data_sharing",
            "notification",
            "retention",
        ]
        assert (tmp_path / "var" / "case_registration.sqlite").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()[-2000:]


def test_keten_demo_prints_what_the_citizen_sees(tmp_path):
    env = {**os.environ, "KETEN_VAR_DIR": str(tmp_path / "var")}
    result = subprocess.run(
        [sys.executable, "-m", "keten.cli", "demo"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "deelde schulden en betalingsachterstanden, inkomen en uitkering met Kredietbank Utrecht"
        in result.stdout
    )
    assert SHARED_SENTENCE in result.stdout


def _notification(platform: Any, share_id: str) -> dict[str, Any]:
    """How the citizen was told of the share, as their overview says."""
    from shared.pseudonym import pseudonymise

    subject = pseudonymise(CITIZEN["bsn"], platform.settings.pseudonym_secret)
    [case] = platform.app("notification").overview_for(subject).to_json()["cases"]
    return dict(next(s["notification"] for s in case["shares"] if s["share_id"] == share_id))
