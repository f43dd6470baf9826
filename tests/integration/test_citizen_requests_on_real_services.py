"""The citizen's requests on this machine's real RabbitMQ and PostgreSQL: a question to one
agency reaches that agency's inbox with the citizen's words sealed to its key, the same
submission twice is one request, the agency answers on the bus and the citizen reads the answer;
an objection takes effect at once and every agency at the table hears it; the database holds
the citizen's words only sealed."""

from __future__ import annotations

import uuid

import pytest
import requests

from keten.demo import CITIZEN, register_case_command
from keten_client import AgencyClient, InboxMessage
from tests.factories import activate_command
from tests.integration.test_agency_bus import (  # noqa: F401 (a fixture)
    KREDIETBANK,
    UTRECHT,
    agencies,
    request_until_the_case_is_known,
)
from tests.support import eventually, pg_dump, running_platform

pytestmark = pytest.mark.integration

QUESTION = "Welke afspraken maakt de kredietbank met mijn verhuurder?"
REASON = {
    "nl": "De kredietbank maakt geen afspraken met uw verhuurder.",
    "en": "We make no arrangements with your landlord.",
}


def test_a_question_reaches_the_agency_sealed_is_answered_on_the_bus_and_an_objection_stops_the_case(
    production_env,
    postgres_dsn,
    pg_schema,
    agencies,  # noqa: F811
):
    with running_platform(production_env) as platform:
        base = platform.base_url
        utrecht, kredietbank = agencies(UTRECHT), agencies(KREDIETBANK)
        case = register_case_command(str(uuid.uuid4()))
        with AgencyClient(utrecht) as client:
            client.request("case_registration", "register_case", case, timeout=60)
            client.request(
                "case_registration", "activate_case", activate_command(case["case_id"]), timeout=60
            )

        token = requests.post(f"{base}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=5)
        citizen = {"Authorization": f"Bearer {token.json()['token']}"}
        question = {
            "request_id": str(uuid.uuid4()),
            "case_id": case["case_id"],
            "kind": "question",
            "agency": KREDIETBANK,
            "text": QUESTION,
        }

        def ask() -> requests.Response | None:
            asked = requests.post(f"{base}/api/citizen/requests", json=question, headers=citizen, timeout=30)
            return None if asked.status_code == 404 else asked  # consent has not heard of the case yet

        first = eventually(ask, timeout=60, interval=0.2)
        assert first.status_code == 201, first.text
        again = ask()
        assert again is not None and again.json() == first.json(), "the same request id is one request"
        request_id = first.json()["request_id"]

        seen: dict[str, list[InboxMessage]] = {}

        def heard(credentials, name: str) -> list[InboxMessage]:
            with AgencyClient(credentials) as client:
                for message in client.inbox(timeout=1):
                    seen.setdefault(f"{credentials.agency}/{message.name}", []).append(message)
            return seen.get(f"{credentials.agency}/{name}", [])

        [received] = eventually(lambda: heard(kredietbank, "CitizenRequestReceived"), timeout=60)
        assert received.data["request_id"] == request_id and received.data["answer_required"] is True
        assert received.data["due_on"] == first.json()["due_on"]
        assert received.content == {"text": QUESTION, "subject": {"role": "citizen"}}
        assert QUESTION not in str(received.envelope), "sealed to the agency's key"

        with AgencyClient(kredietbank) as client:
            listed = client.request("consent", "list_citizen_requests", {}, timeout=60)
            assert [r["request_id"] for r in listed["requests"]] == [request_id]
            answered = client.request(
                "consent",
                "answer_citizen_request",
                {"request_id": request_id, "outcome": "refused", "reason": REASON},
                timeout=60,
            )
        assert answered["status"] == "answered"

        mine = requests.get(f"{base}/api/citizen/requests", headers=citizen, timeout=30).json()["requests"]
        [answer] = [s for s in mine[0]["steps"] if s["step"] == "answered"]
        assert (answer["outcome"], answer["reason"], answer["late"]) == ("refused", REASON, False)

        objection = {"request_id": str(uuid.uuid4()), "case_id": case["case_id"], "kind": "objection"}
        lodged = requests.post(f"{base}/api/citizen/requests", json=objection, headers=citizen, timeout=30)
        assert (lodged.status_code, lodged.json()["status"]) == (201, "answered"), lodged.text
        notices = eventually(
            lambda: [
                m for m in heard(kredietbank, "CitizenRequestReceived") if m.data["kind"] == "objection"
            ],
            timeout=60,
        )
        assert notices[0].data["answer_required"] is False

        def stopped() -> bool:
            overview = requests.get(f"{base}/api/citizen/overview", headers=citizen, timeout=30).json()
            return any(c["status"] == "stopped" for c in overview.get("cases", []))

        eventually(stopped, timeout=60, interval=0.3)

    dump = pg_dump(postgres_dsn, pg_schema)
    assert "CitizenRequest.CitizenRequestReceived" in dump, "the request is on record, its words sealed"
    for value in (QUESTION, REASON["nl"], CITIZEN["bsn"]):
        assert value not in dump
