"""A request with an allowed and a refused category, through the gateway, signed, on both paths
(the embedded default and this machine's RabbitMQ and PostgreSQL): the allowed category is
shared, the other refused with its reason, the answer says ``partial``, and the citizen sees both
halves on their overview."""

from __future__ import annotations

import uuid

import pytest
import requests

from keten.demo import CITIZEN, register_case_command
from tests.factories import activate_command, share_command
from tests.support import eventually, running_platform, signed_request

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded_env", "production_env"])
def env(request):
    return request.getfixturevalue(request.param)


def test_a_mixed_request_is_partly_shared_and_partly_refused_and_the_citizen_sees_both(env):
    with running_platform(env) as platform:
        base = platform.base_url
        utrecht, kredietbank = platform.credentials(), platform.credentials("kredietbank-utrecht")
        sharing = platform.app("data_sharing")

        def post(path, body, agency=utrecht):
            response = signed_request("POST", base, path, body, agency)
            assert response.status_code in (200, 201), response.text
            return response.json()

        case_id = str(uuid.uuid4())
        post("/api/cases", register_case_command(case_id))
        post(f"/api/cases/{case_id}/activate", activate_command(case_id))
        eventually(
            lambda: (sharing.cases.get(case_id) or None) and sharing.cases.get(case_id).status == "active"
        )

        mixed = share_command(
            case_id,
            agency="kredietbank-utrecht",
            to_agencies=["woningcorporatie-mitros"],
            categories=["professional_conclusion", "debts"],
            content="Schuldhulp loopt; betalingsregeling afgesproken.",
        )
        answer = post("/api/shares", mixed, kredietbank)
        assert answer["outcome"] == "partial"
        [decision] = answer["decisions"]
        assert (decision["outcome"], decision["reason_code"]) == ("partial", "category_not_agreed")
        assert [(c["category"], c["outcome"]) for c in decision["categories"]] == [
            ("professional_conclusion", "shared"),
            ("debts", "refused"),
        ]

        token = requests.post(f"{base}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=5).json()[
            "token"
        ]

        def her_case():
            overview = requests.get(
                f"{base}/api/citizen/overview",
                params={"lang": "en"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            ).json()
            found = [c for c in overview["cases"] if c["case_id"] == case_id]
            return found[0] if found and found[0]["shares"] and found[0]["refusals"] else None

        case = eventually(her_case)
        [share] = case["shares"]
        [refusal] = case["refusals"]
        assert (share["share_id"], share["categories"]) == (decision["share_id"], ["professional_conclusion"])
        assert (refusal["categories"], refusal["reason_code"], refusal["beside_share"]) == (
            ["debts"],
            "category_not_agreed",
            True,
        )
        assert refusal["part_of"] == decision["share_id"]
