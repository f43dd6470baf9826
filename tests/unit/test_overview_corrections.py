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
    overview = platform.services["notification"].get_overview(subject, language)
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


def test_the_citizens_copy_keeps_its_shape_after_a_correction_and_an_erasure(platform, corrected):
    """The JSON the gateway serves (``GET /api/citizen/overview``, the page, the citizen's copy)
    has the fields it always had, the view's words beside the record's own."""
    case_id, _, _ = corrected
    platform.command("case_registration", "close_case", {**close_case_command(), "case_id": case_id})
    subject = pseudonymise(CITIZEN["bsn"], platform.apps["retention"].settings.pseudonym_secret)
    request = {"subject": subject, "case_id": case_id, "language": "en"}
    platform.apps["retention"].request_erasure(load_command(ErasureRequestSchema, request))
    platform.sync()

    overview = platform.services["notification"].get_overview(subject, "en")
    assert set(overview) == {"subject", "language", "cases"}
    [case] = [c for c in overview["cases"] if c["case_id"] == case_id]
    assert set(case) == {
        *("case_id", "table", "purpose", "role", "minor", "participants", "record_holder"),
        *("retention_class", "contact_point", "participation", "informed_beforehand", "status"),
        *("registered_at", "ended_at", "outcome", "purged", "table_name", "purpose_label"),
        *("record_holder_name", "shares", "refusals", "consents", "objections", "overrides"),
        *("erasure_requests", "retention"),
    }
    assert {frozenset(p) for p in case["participants"]} == {
        frozenset({"agency", "role", "legal_ground", "name", "legal_ground_label"})
    }
    assert set(case["contact_point"]) == {"agency", "function", "agency_name"}
    assert {frozenset(r) for r in case["retention"]} == {
        frozenset({"record_kind", "label", "due_at", "purged_at"})
    }
    assert case["purged"] and all(
        set(m) == {"record_kind", "purged_at", "reason", "label"} for m in case["purged"]
    )
    [share] = case["shares"]
    assert set(share) == {
        *("share_id", "request_id", "case_id", "subject", "from_agency", "to_agency", "categories"),
        *("purpose", "sender_ground", "recipient_ground", "special_grounds", "form", "meeting_id"),
        *("content", "direction", "override_id", "contact_point", "catalogue_version"),
        *("correlation_id", "kind", "occurred_at", "notification", "corrections", "erasure_passed_on"),
        *("purged_at", "purge_reason", "category_labels", "from_name", "to_name", "ground_label"),
        "purpose_label",
        # since decisions name their law (issue 14): added, nothing taken away
        *("provision", "provision_citation", "special_citations"),
    }
    assert set(share["notification"]) == {"id", "channel", "status", "at"}
    [correction] = share["corrections"]
    assert set(correction) == {"correction_id", "at", "by", "reason_code", "by_name", "reason"}
    assert set(share["erasure_passed_on"]) == {"at", "recipients", "reason", "recipient_names"}
    [erasure] = case["erasure_requests"]
    assert set(erasure) == {
        *("retention_id", "case_id", "subject", "decision", "kind", "occurred_at", "reason"),
        *("purged_at", "purge_reason"),
    }
