"""Rule 6 on this machine's real RabbitMQ and PostgreSQL: a recipient agency hears, in its own
inbox, of a correction of what was shared with it and, once the citizen's erasure request is
granted, that it must erase its copy; and the database then holds neither text readably."""

from __future__ import annotations

import uuid

import pytest
import requests

from keten.demo import CITIZEN, SHARED_SENTENCE, run_demo
from keten_client import AgencyClient, InboxMessage
from tests.integration.test_agency_bus import KREDIETBANK, agencies  # noqa: F401 (a fixture)
from tests.support import eventually, pg_dump, running_platform, signed_request

pytestmark = pytest.mark.integration

CORRECTED = "Huurachterstand van twee maanden, inmiddels met een regeling."


def test_a_recipient_hears_of_the_correction_and_of_the_erasure_and_nothing_readable_is_left(
    production_env,
    postgres_dsn,
    pg_schema,
    agencies,  # noqa: F811
):
    with running_platform(production_env) as platform:
        base, utrecht = platform.base_url, platform.credentials()
        kredietbank = agencies(KREDIETBANK)  # its own broker user and keys, before the share
        demo = run_demo(base, out=lambda *_: None, credentials=utrecht)  # shares, then closes

        path = f"/api/shares/{demo.share_id}/corrections"
        correction = {
            "schema_version": 1,
            "correction_id": str(uuid.uuid4()),
            "content": CORRECTED,
            "reason_code": "factual_error",
        }
        mitros = platform.credentials("woningcorporatie-mitros")  # at the table, not the sender
        by_another = signed_request("POST", base, path, correction, mitros)
        assert (by_another.status_code, by_another.json()["error"]["code"]) == (
            403,
            "not_sender_or_record_holder",
        )
        corrected = signed_request("POST", base, path, correction, utrecht)
        assert corrected.status_code == 201, corrected.text
        assert corrected.json()["passed_on_to"] == [{"share_id": demo.share_id, "to_agency": KREDIETBANK}]

        inbox: dict[str, InboxMessage] = {}

        def arrived(name: str) -> InboxMessage | None:
            with AgencyClient(kredietbank) as client:
                inbox.update((m.name, m) for m in client.inbox(timeout=1))
            return inbox.get(name)

        correction_message = eventually(lambda: arrived("ShareCorrected"), timeout=30)
        assert correction_message.data["share_id"] == demo.share_id
        assert correction_message.data["reason_code"] == "factual_error"
        assert correction_message.content["content"] == CORRECTED
        assert CORRECTED not in str(correction_message.envelope), "sealed to the recipient's key"
        assert inbox["ShareReceived"].content["content"] == SHARED_SENTENCE

        token = requests.post(f"{base}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=5)
        erasure = requests.post(
            f"{base}/api/citizen/erasure",
            json={"case_id": demo.case_id},
            headers={"Authorization": f"Bearer {token.json()['token']}"},
            timeout=5,
        )
        assert erasure.json()["decision"] == "granted"

        erase = eventually(lambda: arrived("ShareErasureRequired"), timeout=30)
        assert erase.requires_erasure
        assert erase.data == {
            "share_id": demo.share_id,
            "case_id": demo.case_id,
            "reason": "erasure",
            "purged_at": erase.data["purged_at"],
        }

        again = dict(correction, correction_id=str(uuid.uuid4()))
        refused = signed_request("POST", base, path, again, utrecht)
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "share_purged")

    dump = pg_dump(postgres_dsn, pg_schema)
    assert "Share.ShareCorrected" in dump, "the correction is on record, sealed"
    for value in (CORRECTED, SHARED_SENTENCE, CITIZEN["bsn"], CITIZEN["name"]):
        assert value not in dump
