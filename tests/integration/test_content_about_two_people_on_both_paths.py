"""A report about both parents, through the gateway, signed, on both paths (the embedded default
and this machine's RabbitMQ and PostgreSQL): each parent has it on their overview; a person who
is no subject of the case is refused before anything is decided."""

from __future__ import annotations

import uuid

import pytest
import requests

from keten.demo import CITIZEN
from tests.factories import FATHER, MOTHER, activate_command, family_case_command
from tests.support import eventually, running_platform, signed_request

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded_env", "production_env"])
def env(request):
    return request.getfixturevalue(request.param)


def test_a_report_about_both_parents_reaches_each_ones_overview(env):
    with running_platform(env) as platform:
        base, utrecht = platform.base_url, platform.credentials()
        sharing = platform.app("data_sharing")
        command = family_case_command()
        case_id = command["case_id"]
        for path, body in (
            ("/api/cases", command),
            (f"/api/cases/{case_id}/activate", activate_command(case_id)),
        ):
            assert signed_request("POST", base, path, body, utrecht).status_code in (200, 201)
        eventually(
            lambda: (sharing.cases.get(case_id) or None) and sharing.cases.get(case_id).status == "active"
        )

        def share(**changes):
            body = {
                "schema_version": 1,
                "agency": "gemeente-utrecht",
                "request_id": str(uuid.uuid4()),
                "case_id": case_id,
                "subject_bsn": MOTHER["bsn"],
                "also_about": [FATHER["bsn"]],
                "to_agencies": ["raad-kinderbescherming"],
                "categories": ["safety_concerns"],
                "purpose": "youth_protection",
                "content": "Beide ouders: ruzies thuis.",
                **changes,
            }
            return signed_request("POST", base, "/api/shares", body, utrecht)

        unknown = share(also_about=[CITIZEN["bsn"]])
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "not_a_subject")
        assert CITIZEN["bsn"] not in unknown.text
        answer = share()
        assert answer.status_code == 200 and answer.json()["outcome"] == "shared", answer.text
        [decision] = answer.json()["decisions"]

        def shares_of(person):
            token = requests.post(
                f"{base}/api/citizen/session", json={"bsn": person["bsn"]}, timeout=5
            ).json()["token"]
            overview = requests.get(
                f"{base}/api/citizen/overview", headers={"Authorization": f"Bearer {token}"}, timeout=5
            ).json()
            return [s["share_id"] for c in overview["cases"] if c["case_id"] == case_id for s in c["shares"]]

        for person in (MOTHER, FATHER):
            assert eventually(lambda person=person: shares_of(person)) == [decision["share_id"]]
