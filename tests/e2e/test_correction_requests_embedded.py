"""A correction request answered with the documented command line, on the embedded platform
(`make run`): `keten requests answer --outcome granted` is refused before a correction was run,
`keten requests correct` runs it (the corrected content from a file) and the citizen's request
is answered; data never shared through Keten is granted with `--nothing-shared`; each step of
the requests is a record in `var/ldv.jsonl`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests

from keten.demo import CITIZEN, share_request_command
from shared.ldv import processing_log
from tests.integration.test_ldv_on_real_services import active_case
from tests.support import eventually, keten, running_platform, signed_request
from tests.unit.test_ldv import check_record

pytestmark = pytest.mark.e2e

REASON = ["--reason-nl", "Wij hebben het nagekeken.", "--reason-en", "We have checked it."]


def test_an_agency_answers_a_correction_request_by_running_the_correction_from_the_command_line(
    embedded_env, tmp_path
):
    ldv = Path(embedded_env["KETEN_VAR_DIR"]) / "ldv.jsonl"
    with running_platform(embedded_env) as platform:
        base, utrecht = platform.base_url, platform.credentials()
        case_id = active_case(base, utrecht)

        def share() -> str | None:
            answer = signed_request("POST", base, "/api/shares", share_request_command(case_id), utrecht)
            decided = answer.json()["decisions"][0] if answer.status_code == 200 else {}
            return decided.get("share_id") if decided.get("outcome") == "shared" else None

        share_id = eventually(share, timeout=30, interval=0.5)
        token = requests.post(f"{base}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=5)
        citizen = {"Authorization": f"Bearer {token.json()['token']}"}

        def ask(words: str) -> str:
            body = {"request_id": str(uuid.uuid4()), "case_id": case_id, "kind": "correction", "text": words}

            def sent() -> requests.Response | None:
                answer = requests.post(f"{base}/api/citizen/requests", json=body, headers=citizen, timeout=30)
                return None if answer.status_code == 404 else answer

            answer = eventually(sent, timeout=30, interval=0.2)
            assert answer.status_code == 201, answer.text
            return str(answer.json()["request_id"])

        def mine(request_id: str) -> dict:
            found = requests.get(f"{base}/api/citizen/requests", headers=citizen, timeout=30).json()
            return next(r for r in found["requests"] if r["request_id"] == request_id)

        shared_one = ask("Het zijn twee maanden achterstand, niet drie.")
        cli = ["--url", base, "--as", "gemeente-utrecht"]
        too_soon = keten(
            "requests", "answer", shared_one, *cli, "--outcome", "granted", *REASON, env=platform.env
        )
        assert too_soon.returncode == 1 and "correction_not_run" in too_soon.stderr, too_soon.stderr

        content = tmp_path / "corrected.txt"
        content.write_text("Huurachterstand van twee maanden (april en mei).\n", encoding="utf-8")
        corrected = keten(
            "requests",
            "correct",
            shared_one,
            *cli,
            "--share",
            share_id,
            "--content-file",
            str(content),
            env=platform.env,
        )
        assert corrected.returncode == 0, corrected.stderr
        assert "passed on to kredietbank-utrecht" in corrected.stdout
        answered = eventually(lambda: mine(shared_one) if mine(shared_one)["status"] == "answered" else None)
        assert [s["step"] for s in answered["steps"]] == ["received", "corrected", "answered"]
        assert answered["steps"][-1]["outcome"] == "granted"

        kept_outside = ask("Mijn geboortedatum in uw eigen dossier klopt niet.")
        granted = keten(
            "requests",
            "answer",
            kept_outside,
            *cli,
            "--outcome",
            "granted",
            "--nothing-shared",
            *REASON,
            env=platform.env,
        )
        assert granted.returncode == 0 and "answered" in granted.stdout, granted.stderr

        processing_log(platform.settings).flush()
        register = processing_log(platform.settings).register
        records = [json.loads(line) for line in ldv.read_text().splitlines()]

    steps = [r for r in records if r["name"].startswith("citizen's request")]
    assert {"citizen's request received", "citizen's request corrected", "citizen's request answered"} <= {
        r["name"] for r in steps
    }
    for record in steps:
        check_record(record, register)
