"""The rules of a ketenoverleg through the gateway, signed, on both paths: the embedded default
(SQLite, in-process broker) and this machine's RabbitMQ and PostgreSQL. Same scenario, same
outcomes: an agency's slip is refused quietly, an objection stops shares visibly, a safety
override lets through what its scope holds and nothing more, a closed case takes nothing."""

from __future__ import annotations

import uuid

import pytest
import requests

from shared.pseudonym import pseudonymise
from tests.factories import (
    MOTHER,
    SON,
    activate_command,
    family_case_command,
    objection_command,
    override_command,
)
from tests.support import eventually, running_platform, signed_request

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded_env", "production_env"])
def env(request):
    return request.getfixturevalue(request.param)


def test_every_rule_holds_on_this_path(env):
    with running_platform(env) as platform:
        base = platform.base_url
        utrecht, veilig_thuis = platform.credentials(), platform.credentials("veilig-thuis-utrecht")
        sharing = platform.app("data_sharing")

        def post(path, body, agency=utrecht, expect=(200, 201)):
            response = signed_request("POST", base, path, body, agency)
            assert response.status_code in expect, response.text
            return response.json()

        def decide(agency=utrecht, **changes):
            body = {
                "schema_version": 1,
                "agency": agency.agency,
                "request_id": str(uuid.uuid4()),
                "case_id": case_id,
                "subject_bsn": MOTHER["bsn"],
                "to_agencies": ["raad-kinderbescherming"],
                "categories": ["safety_concerns"],
                "purpose": "youth_protection",
                "content": "Zorgen over de veiligheid thuis.",
                **changes,
            }
            [decision] = post("/api/shares", body, agency)["decisions"]
            return decision

        command = family_case_command()
        case_id = command["case_id"]
        post("/api/cases", command)
        early = signed_request("POST", base, "/api/shares", {"schema_version": 1}, utrecht)
        assert early.status_code == 400  # malformed before anything else
        assert post(f"/api/cases/{case_id}/activate", activate_command(case_id))["status"] == "active"
        eventually(
            lambda: (sharing.cases.get(case_id) or None) and sharing.cases.get(case_id).status == "active"
        )

        # rules 1-3: within the agreement and grounds; an agency's slips are refused on record
        assert decide()["outcome"] == "shared"
        assert decide(to_agencies=["school-het-baken"])["reason_code"] == "category_not_agreed"
        special = decide(agency=platform.credentials("ggd-regio-utrecht"), categories=["mental_health"])
        assert special["reason_code"] == "special_category_without_ground"

        # rule 4: the mother objects; shares about her stop, and she sees the refused attempt
        post("/api/objections", objection_command(case_id, MOTHER["bsn"]))
        mother = pseudonymise(MOTHER["bsn"], platform.settings.pseudonym_secret)
        eventually(lambda: sharing._subject_say(uuid.UUID(case_id), mother).objection_id)
        refused = decide(agency=veilig_thuis)
        assert (refused["outcome"], refused["reason_code"]) == ("refused", "objection_lodged")

        token = requests.post(f"{base}/api/citizen/session", json={"bsn": MOTHER["bsn"]}, timeout=5).json()[
            "token"
        ]

        def her_refusals():
            overview = requests.get(
                f"{base}/api/citizen/overview", headers={"Authorization": f"Bearer {token}"}, timeout=5
            ).json()
            [case] = [c for c in overview["cases"] if c["case_id"] == case_id]
            return case["refusals"]

        [seen] = eventually(her_refusals)
        assert seen["reason_code"] == "objection_lodged" and seen["reason"].startswith("U heeft bezwaar")

        # ... unless a safety override covers the share: its subjects, categories and recipients
        override = post("/api/safety-overrides", override_command(case_id, [MOTHER["bsn"]]), veilig_thuis)
        eventually(lambda: sharing._subject_say(uuid.UUID(case_id), mother).overrides)
        allowed = decide(agency=veilig_thuis)
        assert (allowed["outcome"], allowed["override_id"]) == ("shared", override["override_id"])
        assert decide(agency=veilig_thuis, categories=["identity"])["reason_code"] == "objection_lodged"
        assert decide(agency=veilig_thuis, subject_bsn=SON["bsn"])["outcome"] == "shared"  # no objection
        # the second refusal reaches her overview asynchronously, like the first
        assert eventually(lambda: [r["reason_code"] for r in her_refusals()] == ["objection_lodged"] * 2)

        # a closed case takes nothing more
        post(
            f"/api/cases/{case_id}/close",
            {"schema_version": 1, "agency": "gemeente-utrecht", "outcome": "help_arranged"},
        )
        eventually(lambda: sharing.cases.get(case_id).status == "closed")
        assert decide(subject_bsn=SON["bsn"])["reason_code"] == "case_closed"
