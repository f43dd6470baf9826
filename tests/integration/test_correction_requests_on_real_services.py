"""A citizen's correction request granted runs rule 6, on this machine's RabbitMQ and PostgreSQL:
granting it before a correction was run is refused (409 ``correction_not_run``, on the bus); the
agency runs the correction over signed HTTP with ``in_answer_to`` and its own ``traceparent``;
the recipient hears the correction in its inbox, consent hears it from data_sharing and answers
the citizen's request with a text naming what was corrected; each step of the request is a
processing log (LDV) record naming the subject by pseudonym, the correction's steps in the
agency's trace; the database holds neither the citizen's words nor the corrected content."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests

from keten.demo import CITIZEN, share_request_command
from keten_client import AgencyClient, CommandFailed, InboxMessage
from shared.ldv import processing_log
from shared.pseudonym import pseudonymise
from tests.integration.test_agency_bus import KREDIETBANK, UTRECHT, agencies  # noqa: F401 (a fixture)
from tests.integration.test_ldv_on_real_services import (  # noqa: F401 (a fixture)
    active_case,
    inbox_message,
    ldv_env,
    new_traceparent,
    records_of,
)
from tests.support import eventually, pg_dump, running_platform, signed_request
from tests.unit.test_ldv import check_record

pytestmark = pytest.mark.integration

WORDS = "Ik heb twee maanden huurachterstand, niet drie."
CORRECTED = "Huurachterstand van twee maanden (april en mei)."
REASON = {"nl": "Wij hebben het nagekeken.", "en": "We have checked it."}


def test_a_granted_correction_request_runs_rule_6_and_is_answered_in_the_agencys_trace(
    ldv_env,  # noqa: F811
    postgres_dsn,
    pg_schema,
    agencies,  # noqa: F811
):
    path = Path(ldv_env["KETEN_LDV_FILE"])
    with running_platform(ldv_env) as platform:
        base, utrecht = platform.base_url, agencies(UTRECHT)  # its broker user, for the bus too
        kredietbank = agencies(KREDIETBANK)
        case_id = active_case(base, utrecht)

        def share() -> str | None:
            answer = signed_request("POST", base, "/api/shares", share_request_command(case_id), utrecht)
            decided = answer.json()["decisions"][0] if answer.status_code == 200 else {}
            return decided.get("share_id") if decided.get("outcome") == "shared" else None

        share_id = eventually(share, timeout=30, interval=0.5)

        token = requests.post(f"{base}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=5)
        citizen = {"Authorization": f"Bearer {token.json()['token']}"}
        asked = {"request_id": str(uuid.uuid4()), "case_id": case_id, "kind": "correction", "text": WORDS}

        def ask() -> requests.Response | None:
            sent = requests.post(f"{base}/api/citizen/requests", json=asked, headers=citizen, timeout=30)
            return None if sent.status_code == 404 else sent  # consent has not heard of the case yet

        submitted = eventually(ask, timeout=60, interval=0.2)
        assert submitted.status_code == 201, submitted.text
        request_id = submitted.json()["request_id"]

        with AgencyClient(utrecht) as client, pytest.raises(CommandFailed) as refused:
            client.request(
                "consent",
                "answer_citizen_request",
                {"request_id": request_id, "outcome": "granted", "reason": REASON},
                timeout=60,
            )
        assert refused.value.error["code"] == "correction_not_run"
        assert "in_answer_to" in refused.value.error["message"]

        traceparent, trace_id, _ = new_traceparent()
        correction = {
            "schema_version": 1,
            "correction_id": str(uuid.uuid4()),
            "content": CORRECTED,
            "reason_code": "citizen_request",
            "in_answer_to": request_id,
        }
        corrected = signed_request(
            "POST",
            base,
            f"/api/shares/{share_id}/corrections",
            correction,
            utrecht,
            headers={"traceparent": traceparent},
        )
        assert corrected.status_code == 201, corrected.text

        kept: dict[str, InboxMessage] = {}
        told = eventually(lambda: inbox_message(kredietbank, "ShareCorrected", kept), timeout=30)
        assert told.content["content"] == CORRECTED

        def answered() -> dict | None:
            mine = requests.get(f"{base}/api/citizen/requests", headers=citizen, timeout=30).json()[
                "requests"
            ]
            found = next(r for r in mine if r["request_id"] == request_id)
            return found if found["status"] == "answered" else None

        request = eventually(answered, timeout=60, interval=0.3)
        assert [s["step"] for s in request["steps"]] == ["received", "corrected", "answered"]
        answer = request["steps"][-1]
        assert answer["outcome"] == "granted" and answer["late"] is False
        assert "schulden" in answer["reason"]["nl"] and "inkomen" in answer["reason"]["nl"], answer
        assert "debts" in answer["reason"]["en"].lower()

        wanted = {"correction passed on", "citizen's request corrected", "citizen's request answered"}

        def traced() -> list[dict] | None:
            found = records_of(platform, path, trace_id)
            return found if wanted <= {r["name"] for r in found} else None

        in_trace = eventually(traced, timeout=30)
        processing_log(platform.settings).flush()
        every = [r for r in records_of_all(path) if r["name"].startswith("citizen's request")]
        register = processing_log(platform.settings).register

    subject = pseudonymise(CITIZEN["bsn"], platform.settings.pseudonym_secret)
    for record in [*in_trace, *every]:
        check_record(record, register)
    consent_steps = [r for r in in_trace if r["name"].startswith("citizen's request")]
    assert {r["resource"]["attributes"]["service.name"] for r in consent_steps} == {"keten-consent"}
    assert all(r["attributes"]["dpl.core.data_subject_id"] == subject for r in every)
    assert "citizen's request received" in {r["name"] for r in every}
    assert all(
        "/platform.handle-citizen-request/" in r["attributes"]["dpl.core.processing_activity_id"]
        for r in every
    )

    dump = pg_dump(postgres_dsn, pg_schema)
    assert "CitizenRequest.CitizenRequestCorrectionRecorded" in dump
    for value in (WORDS, CORRECTED, CITIZEN["bsn"]):
        assert value not in dump


def records_of_all(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
