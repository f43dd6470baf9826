"""Read your own writes on RabbitMQ and PostgreSQL: a consent recorded and a share sent right
after it, back to back, carrying the consistency token of the answer before; never refused
because the consent had not reached data_sharing yet. A forged token is refused."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from keten.demo import register_case_command
from keten_client import AgencyClient, CommandFailed
from shared.agencies import register_new_credentials
from tests.factories import activate_command, consent_command, share_command
from tests.support import running_platform, signed_request

pytestmark = pytest.mark.integration

UTRECHT, MITROS = "gemeente-utrecht", "woningcorporatie-mitros"
ROUNDS = 100


def without_agency(command: dict[str, Any]) -> dict[str, Any]:
    """The client fills in its own agency."""
    return {k: v for k, v in command.items() if k != "agency"}


def test_consent_then_share_back_to_back_is_never_refused_for_lag(production_env):
    with running_platform(production_env) as platform:
        settings = platform.settings
        utrecht, mitros = (
            register_new_credentials(settings, agency, amqp_url=production_env["AMQP_URI"])
            for agency in (UTRECHT, MITROS)
        )
        outcomes = []
        with AgencyClient(utrecht) as municipality, AgencyClient(mitros) as landlord:
            for _ in range(ROUNDS):
                case = register_case_command(str(uuid.uuid4()))
                case_id = case["case_id"]
                municipality.request("case_registration", "register_case", case)
                municipality.request("case_registration", "activate_case", activate_command(case_id))
                # The landlord's system takes the municipality's token with the case id.
                landlord.consistency_token = municipality.consistency_token
                landlord.request(
                    "consent",
                    "give_consent",
                    without_agency(consent_command(case_id, recipients=[UTRECHT], categories=["housing"])),
                )
                answer = landlord.request(
                    "data_sharing",
                    "request_share",
                    without_agency(share_command(case_id, to_agencies=[UTRECHT], categories=["housing"])),
                )
                [decision] = answer["decisions"]
                outcomes.append((decision["outcome"], decision["reason_code"]))
        assert outcomes == [("shared", "allowed")] * ROUNDS


def test_a_forged_or_stale_token_is_refused_and_changes_nothing(production_env):
    with running_platform(production_env, ["case_registration", "gateway"]) as platform:
        utrecht = register_new_credentials(platform.settings, UTRECHT, amqp_url=production_env["AMQP_URI"])
        with AgencyClient(utrecht) as client:
            case = register_case_command(str(uuid.uuid4()))
            registered = client.request("case_registration", "register_case", case)
            version, payload, mac = registered["consistency_token"].split(".")
            forged = f"{version}.{payload}.{'A' * len(mac)}"
            with pytest.raises(CommandFailed) as refused:
                client.request(
                    "case_registration",
                    "activate_case",
                    {**activate_command(case["case_id"]), "consistency_token": forged},
                )
            assert refused.value.error["code"] == "invalid_consistency_token"

        path = f"/api/cases/{case['case_id']}/activate"
        over_http = signed_request(
            "POST", platform.base_url, path, {"schema_version": 1, "consistency_token": forged}, utrecht
        )
        assert (over_http.status_code, over_http.json()["error"]["code"]) == (
            400,
            "invalid_consistency_token",
        )
        activated = signed_request(
            "POST",
            platform.base_url,
            path,
            {"schema_version": 1, "consistency_token": registered["consistency_token"]},
            utrecht,
        )
        assert activated.status_code == 200 and activated.json()["status"] == "active"
