"""The citizen reads in their overview that a share was corrected (the corrected content, when,
by whom and why) and that its recipients were told to erase their copy: rule 6, seen by the
person it protects. Through the services' own entrypoints on in-memory stores."""

from __future__ import annotations

import uuid

import pytest

from keten.demo import CITIZEN, close_case_command, register_case_command
from shared.contracts.commands import ErasureRequestSchema, load_command
from shared.pseudonym import pseudonymise
from tests.factories import activate_command, share_command
from tests.wired import WiredPlatform

ORIGINAL = "Drie maanden huurachterstand."
CORRECTED = "Twee maanden huurachterstand, april en mei."


@pytest.fixture
def platform(memory_settings):
    return WiredPlatform(memory_settings)


@pytest.fixture
def corrected(platform):
    """A share, then its correction by the municipality that made it."""
    command = register_case_command(str(uuid.uuid4()))
    case_id = command["case_id"]
    platform.command("case_registration", "register_case", command)
    platform.command("case_registration", "activate_case", activate_command(case_id))
    answer = platform.command("data_sharing", "request_share", share_command(case_id, content=ORIGINAL))
    [decision] = answer["decisions"]
    correction = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "correction_id": str(uuid.uuid4()),
        "share_id": decision["share_id"],
        "content": CORRECTED,
        "reason_code": "factual_error",
    }
    platform.command("data_sharing", "correct_share", correction)
    return case_id, decision["share_id"], correction


def the_share(platform, case_id, language="nl") -> dict:
    subject = pseudonymise(CITIZEN["bsn"], platform.apps["notification"].settings.pseudonym_secret)
    overview = platform.apps["notification"].overview_for(subject, language)
    [case] = [c for c in overview["cases"] if c["case_id"] == str(case_id)]
    [share] = case["shares"]
    return share


def test_the_citizen_reads_the_corrected_content_and_when_by_whom_and_why(platform, corrected):
    case_id, _, correction = corrected
    share = the_share(platform, case_id, "en")

    assert share["content"]["content"] == CORRECTED
    [shown] = share["corrections"]
    assert (shown["by_name"], shown["reason"]) == ("Gemeente Utrecht", "the shared data were wrong")

    platform.command("data_sharing", "correct_share", correction)  # a repeat
    assert len(the_share(platform, case_id)["corrections"]) == 1


def test_after_an_erasure_the_citizen_reads_that_the_recipients_were_told_to_erase_their_copy(
    platform, corrected
):
    case_id, _, _ = corrected
    platform.command("case_registration", "close_case", {**close_case_command(), "case_id": case_id})
    subject = pseudonymise(CITIZEN["bsn"], platform.apps["retention"].settings.pseudonym_secret)
    request = {"subject": subject, "case_id": case_id, "language": "en"}
    assert (
        platform.apps["retention"].request_erasure(load_command(ErasureRequestSchema, request)).decision
        == "granted"
    )
    platform.sync()

    share = the_share(platform, case_id, "en")
    assert share["erasure_passed_on"]["recipient_names"] == ["Kredietbank Utrecht"]
    assert share["erasure_passed_on"]["reason"] == "erasure"
    assert CORRECTED not in str(share) and ORIGINAL not in str(share)
