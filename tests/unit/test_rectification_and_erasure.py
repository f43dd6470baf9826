"""Rule 6 (docs/architecture.md): a correction, and an erasure, reach every agency the content was
shared with.

In-memory stores, the applications wired by hand as in ``test_retention``.
"""

from __future__ import annotations

import json
import uuid

import pytest
from eventsourcing.persistence import IntegrityError

from keten_client.protocol import KeyPair, open_sealed
from shared.contracts.commands import CorrectShareSchema, RequestShareSchema, load_command
from shared.errors import Conflict, InvalidRequest, NotAuthorised, NotFound
from tests.factories import loaded, received, share_command
from tests.unit.test_retention import YEARS_3, Platform

ORIGINAL = "Drie maanden huurachterstand."
CORRECTED = "Twee maanden huurachterstand, april en mei."
#: The credit bank and the housing corporation may both receive debts at this table.
AGREEMENT = [
    {"agency": "gemeente-utrecht", "bring": ["debts"], "receive": ["debts"]},
    {"agency": "kredietbank-utrecht", "bring": ["debts"], "receive": ["debts"]},
    {"agency": "woningcorporatie-mitros", "bring": [], "receive": ["debts"]},
]
RECIPIENTS = ["kredietbank-utrecht", "woningcorporatie-mitros"]


@pytest.fixture
def platform(memory_settings):
    platform = Platform(memory_settings)
    platform.keys = {}
    for agency in RECIPIENTS:
        pair = KeyPair.generate()
        platform.sharing.agencies.add_key(agency, pair.signing_public_key, pair.encryption_public_key)
        platform.keys[agency] = pair
    return platform


@pytest.fixture
def shared(platform):
    """A case whose municipality shared one sentence with two agencies: two shares."""
    case_id = platform.register(agreement=AGREEMENT)
    command = share_command(str(case_id), to_agencies=RECIPIENTS, content=ORIGINAL)
    decisions = request_share(platform, command)
    assert [decision.outcome for decision in decisions] == ["shared", "shared"]
    platform.sync()
    return case_id, [decision.share_id for decision in decisions]


def request_share(platform, command):
    """The decisions on a share request, one per recipient."""
    return platform.sharing.request_share(loaded(RequestShareSchema, command, platform.settings)).decisions


def correct(platform, of_share, **changes):
    command = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "correction_id": str(uuid.uuid4()),
        "share_id": str(of_share),
        "content": CORRECTED,
        "reason_code": "factual_error",
        **changes,
    }
    return platform.sharing.correct_share(load_command(CorrectShareSchema, command))


def inbox(platform, name):
    """What the relay addresses to agencies' inboxes for the stored events, by addressee."""
    events = [
        platform.sharing.mapper.to_domain_event(n)
        for n in platform.sharing.recorder.select_notifications(start=1, limit=1000)
    ]
    messages = [m for e in events for m in platform.sharing.inbox_messages(e)]
    return {m.routing_key.split(".")[0]: json.loads(m.body) for m in messages if m.routing_key.endswith(name)}


def test_a_correction_reaches_every_recipient_sealed_to_its_own_key(platform, shared):
    _, share_ids = shared
    correct(platform, share_ids[0])

    corrections = inbox(platform, ".ShareCorrected")
    assert sorted(corrections) == RECIPIENTS
    for agency, envelope in corrections.items():
        assert CORRECTED not in json.dumps(envelope)
        opened = open_sealed(platform.keys[agency].encryption_private_key, envelope["data"]["sealed_content"])
        assert opened["content"] == CORRECTED
        assert envelope["data"]["reason_code"] == "factual_error"
        assert envelope["data"]["corrected_by"] == "gemeente-utrecht"
    assert {e["data"]["share_id"] for e in corrections.values()} == {str(s) for s in share_ids}


def test_the_correction_is_on_record_sealed_under_the_subjects_key(platform, shared):
    _, share_ids = shared
    correct(platform, share_ids[0])
    events = [e for e in received(platform.sharing) if e.name == "ShareCorrected"]
    assert len(events) == 2
    assert CORRECTED not in str([e.data for e in events])
    assert all(e.data.content.key_id == f"{e.data.case_id}/{platform.subject}" for e in events)
    assert platform.vault.open(events[0].data.content)["content"] == CORRECTED


def test_the_record_holder_may_correct_a_share_another_agency_made(platform, shared):
    case_id, _ = shared
    command = share_command(
        str(case_id), agency="kredietbank-utrecht", to_agencies=["woningcorporatie-mitros"]
    )
    [share] = request_share(platform, command)
    recorded = correct(platform, share.share_id, reason_code="citizen_request")
    [passed_on] = recorded.passed_on_to
    assert (passed_on.share_id, passed_on.to_agency) == (share.share_id, "woningcorporatie-mitros")


@pytest.mark.parametrize(
    ("changes", "error", "code"),
    [
        ({"agency": "kredietbank-utrecht"}, NotAuthorised, "not_sender_or_record_holder"),
        ({"share_id": str(uuid.uuid4())}, NotFound, "unknown_share"),
        ({"reason_code": "because_we_can"}, InvalidRequest, "unknown_reason"),
    ],
)
def test_a_correction_not_allowed_gets_a_clear_error_and_changes_nothing(
    platform, shared, changes, error, code
):
    _, share_ids = shared
    before = platform.sharing.recorder.max_notification_id()
    with pytest.raises(error) as raised:
        correct(platform, share_ids[0], **changes)
    assert raised.value.code == code
    assert CORRECTED not in str(raised.value)
    assert platform.sharing.recorder.max_notification_id() == before


def test_a_refused_share_cannot_be_corrected(platform, shared):
    case_id, _ = shared
    command = share_command(str(case_id), categories=["income"], to_agencies=["woningcorporatie-mitros"])
    [refused] = request_share(platform, command)
    with pytest.raises(Conflict) as raised:
        correct(platform, refused.share_id)
    assert raised.value.code == "share_refused"
    with pytest.raises(NotAuthorised) as raised_for_another:
        correct(platform, refused.share_id, agency="uwv")
    assert raised_for_another.value.code == "not_sender_or_record_holder", "it learns nothing of it"


def test_repeating_a_correction_records_nothing_new(platform, shared):
    _, share_ids = shared
    correction_id = str(uuid.uuid4())
    correct(platform, share_ids[0], correction_id=correction_id)
    before = platform.sharing.recorder.max_notification_id()
    again = correct(platform, share_ids[1], correction_id=correction_id)
    assert str(again.correction_id) == correction_id and again.share_id == share_ids[1]
    assert sorted(s.share_id for s in again.passed_on_to) == sorted(share_ids)
    assert platform.sharing.recorder.max_notification_id() == before


def test_an_erasure_is_passed_on_to_every_recipient_once_and_says_nothing_personal(platform, shared):
    case_id, share_ids = shared
    correct(platform, share_ids[0])
    platform.close(case_id)
    assert platform.erase(case_id).decision == "granted"

    passed_on = [e for e in received(platform.sharing) if e.name == "ErasurePassedOn"]
    assert sorted(e.data.recipients[0] for e in passed_on) == RECIPIENTS
    assert {e.data.reason for e in passed_on} == {"erasure"}
    erasures = inbox(platform, ".ShareErasureRequired")
    assert sorted(erasures) == RECIPIENTS
    for envelope in erasures.values():
        assert set(envelope["data"]) == {"share_id", "case_id", "reason", "purged_at"}
        assert envelope["data"]["reason"] == "erasure"
    # What went out before the purge now opens for nobody on the platform.
    assert inbox(platform, ".ShareCorrected")["kredietbank-utrecht"]["data"]["content_withheld"] == "purged"

    # A redelivered purge, and a later purge of the same shares, pass nothing on again.
    purge = next(e for e in platform.published("RecordsPurged") if e.data.record_kind == "share_records")
    with pytest.raises(IntegrityError):
        platform.sharing.record_records_purged(purge)
    platform.purge(YEARS_3)
    assert len([e for e in received(platform.sharing) if e.name == "ErasurePassedOn"]) == 2


def test_a_purged_share_cannot_be_corrected(platform, shared):
    case_id, share_ids = shared
    platform.close(case_id)
    platform.purge(YEARS_3)
    with pytest.raises(Conflict) as raised:
        correct(platform, share_ids[0])
    assert raised.value.code == "share_purged"
    erasures = inbox(platform, ".ShareErasureRequired")
    assert {e["data"]["reason"] for e in erasures.values()} == {"retention"}
