"""A safety override that defers notifications holds the notice of every share in its scope,
also when the subject never objected, until the recording agency ends the deferral; then the
subject is told, with the explanation. Through the gateway, signed, on both paths (the embedded
default and this machine's RabbitMQ and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
import requests

from shared.pseudonym import pseudonymise
from tests.factories import MOTHER, activate_command, family_case_command, override_command
from tests.support import eventually, running_platform, signed_request

pytestmark = pytest.mark.integration

EXPLANATION = "Wij hebben eerst de veiligheid van de kinderen geregeld; nu kunnen wij het u vertellen."


@pytest.fixture(params=["embedded_env", "production_env"])
def env(request):
    return request.getfixturevalue(request.param)


def test_a_deferral_holds_a_share_in_its_scope_without_objection_until_it_ends(env):
    with running_platform(env) as platform:
        base = platform.base_url
        utrecht, veilig_thuis = platform.credentials(), platform.credentials("veilig-thuis-utrecht")
        sharing, notification = platform.app("data_sharing"), platform.app("notification")

        def post(path, body, agency=utrecht):
            response = signed_request("POST", base, path, body, agency)
            assert response.status_code in (200, 201), response.text
            return response.json()

        command = family_case_command()
        case_id = command["case_id"]
        post("/api/cases", command)
        post(f"/api/cases/{case_id}/activate", activate_command(case_id))
        mother = pseudonymise(MOTHER["bsn"], platform.settings.pseudonym_secret)
        review_on = date.today() + timedelta(days=14)
        override = override_command(
            case_id,
            [MOTHER["bsn"]],
            explanation=EXPLANATION,
            deferral={
                "reason": "Vertellen brengt de kinderen nu in gevaar.",
                "review_on": review_on.isoformat(),
            },
        )
        override_id = eventually(lambda: _accepted(base, override, veilig_thuis))["override_id"]
        eventually(lambda: sharing._subject_say(uuid.UUID(case_id), mother).overrides)
        eventually(lambda: notification.deliveries.deferrals_in_force(uuid.UUID(case_id), date.today()))

        # the mother never objected: the share is allowed, and its notice is held all the same
        share = {
            "schema_version": 1,
            "agency": "gemeente-utrecht",
            "request_id": str(uuid.uuid4()),
            "case_id": case_id,
            "subject_bsn": MOTHER["bsn"],
            "to_agencies": ["raad-kinderbescherming"],
            "categories": ["safety_concerns"],
            "purpose": "youth_protection",
            "content": "Zorgen over de veiligheid thuis.",
        }
        [decision] = post("/api/shares", share)["decisions"]
        assert (decision["outcome"], decision["override_id"]) == ("shared", None)

        # listed for review by the agency that recorded it, with the notice it holds
        assert eventually(lambda: notification.deferrals_due("veilig-thuis-utrecht", review_on)[0].held == 1)
        token = requests.post(f"{base}/api/citizen/session", json={"bsn": MOTHER["bsn"]}, timeout=5).json()[
            "token"
        ]

        def her_shares():
            overview = requests.get(
                f"{base}/api/citizen/overview", headers={"Authorization": f"Bearer {token}"}, timeout=5
            ).json()
            [case] = [c for c in overview["cases"] if c["case_id"] == case_id]
            return case["shares"]

        assert her_shares() == [], "nothing told while the deferral holds"

        ended = post(f"/api/deferrals/{override_id}/end", {"schema_version": 1}, veilig_thuis)
        assert ended["released"] == 1
        [told] = eventually(her_shares)
        assert told["share_id"] == decision["share_id"]
        assert told["notification"]["was_deferred"] is True
        assert notification.deferrals_due("veilig-thuis-utrecht", review_on) == []


def _accepted(base, body, agency):
    """The override, once the consent service knows the case (events travel asynchronously)."""
    response = signed_request("POST", base, "/api/safety-overrides", body, agency)
    return response.json() if response.status_code in (200, 201) else None
