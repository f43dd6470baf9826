"""On RabbitMQ and PostgreSQL, agencies on the bus: each share is decided on what data_sharing
consumed before it was asked (a consent given and withdrawn, an objection lodged and withdrawn,
the case closed), and its content is sealed to the key the recipient has when it goes out (a
rotated key takes over at once). The cost work of issue 15 reads these in fewer statements;
nothing it keeps may lag behind what was consumed."""

from __future__ import annotations

import json
import uuid

import pytest

from keten.demo import CITIZEN, close_case_command, register_case_command
from keten_client import AgencyClient, Credentials
from shared.pseudonym import pseudonymise
from tests.factories import activate_command, consent_command, objection_command, share_command
from tests.integration.test_agency_bus import agencies, keten, request_until_the_case_is_known
from tests.support import eventually, running_platform

pytestmark = pytest.mark.integration

__all__ = ["agencies"]  # the fixture, used by name

UTRECHT, KREDIETBANK, MITROS = "gemeente-utrecht", "kredietbank-utrecht", "woningcorporatie-mitros"
FROM_MITROS = {"agency": MITROS, "to_agencies": [UTRECHT], "categories": ["housing"]}


def test_each_share_follows_what_was_consumed_and_the_recipients_current_key(production_env, agencies):
    utrecht, mitros, kredietbank = agencies(UTRECHT), agencies(MITROS), agencies(KREDIETBANK)
    with running_platform(production_env, ["case_registration", "consent", "data_sharing"]) as platform:
        sharing = platform.app("data_sharing")
        subject = pseudonymise(CITIZEN["bsn"], platform.settings.pseudonym_secret)
        case = register_case_command(str(uuid.uuid4()))
        case_id = case["case_id"]

        def say():
            return sharing._subject_say(uuid.UUID(case_id), subject)

        with AgencyClient(utrecht) as by_utrecht, AgencyClient(mitros) as by_mitros:

            def decided(client=by_utrecht, **changes):
                [decision] = client.request(
                    "data_sharing", "request_share", share_command(case_id, **changes)
                )["decisions"]
                return decision["outcome"], decision["reason_code"]

            by_utrecht.request("case_registration", "register_case", case)
            request_until_the_case_is_known(
                by_utrecht, "case_registration", "activate_case", activate_command(case_id)
            )
            eventually(
                lambda: (sharing.cases.get(case_id) or None) and sharing.cases.get(case_id).status == "active"
            )
            assert decided() == ("shared", "allowed")

            # a consent counts once consumed, and no longer once its withdrawal was
            assert decided(by_mitros, **FROM_MITROS) == ("refused", "no_valid_consent")
            consent = consent_command(case_id, recipients=[UTRECHT], categories=["housing"])
            by_utrecht.request("consent", "give_consent", consent)
            eventually(lambda: say().consents)
            assert decided(by_mitros, **FROM_MITROS) == ("shared", "allowed")
            assert decided(by_mitros, **FROM_MITROS) == ("shared", "allowed")
            withdrawal = {
                "schema_version": 1,
                "agency": UTRECHT,
                "case_id": case_id,
                "subject_bsn": CITIZEN["bsn"],
            }
            by_utrecht.request("consent", "withdraw_consent", withdrawal)
            eventually(lambda: not say().consents)
            assert decided(by_mitros, **FROM_MITROS) == ("refused", "no_valid_consent")

            # an objection stops the next share; its withdrawal lets the one after through
            objection = by_utrecht.request("consent", "lodge_objection", objection_command(case_id))
            eventually(lambda: sharing.cases.get(case_id).status == "stopped" and say().objection_id)
            outcome, _ = decided()
            assert outcome == "refused"
            withdrawn = {**objection_command(case_id), "objection_id": objection["objection_id"]}
            withdrawn.pop("reason")
            by_utrecht.request("consent", "withdraw_objection", withdrawn)
            eventually(lambda: sharing.cases.get(case_id).status == "active" and not say().objection_id)
            assert decided() == ("shared", "allowed")

            # the recipient's key rotated: the next share is sealed to the new key, at once
            with AgencyClient(kredietbank) as inbox:
                eventually(lambda: len([m for m in inbox.inbox(timeout=1) if m.name == "ShareReceived"]) >= 1)
            rotated = keten(production_env, "agency", "rotate", KREDIETBANK)
            assert rotated.returncode == 0, rotated.stderr
            new = Credentials.from_dict(json.loads(rotated.stdout))
            with AgencyClient(new) as inbox:
                list(inbox.inbox(timeout=1))  # what was left from before the rotation
                assert decided(content="Na de sleutelwissel.") == ("shared", "allowed")
                [received] = eventually(
                    lambda: [m for m in inbox.inbox(timeout=1) if m.name == "ShareReceived"]
                )
            assert received.data["key_id"] == new.key_id
            assert received.content["content"] == "Na de sleutelwissel."

            # a closed case takes nothing more
            by_utrecht.request(
                "case_registration", "close_case", {**close_case_command(), "case_id": case_id}
            )
            eventually(lambda: sharing.cases.get(case_id).status == "closed")
            assert decided() == ("refused", "case_closed")
