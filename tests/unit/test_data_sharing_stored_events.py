"""Events data_sharing stored before its events were declared as classes still load, replay and
tell the same; and what it stores now has the shape it always had.

``data/data_sharing_events_before_issue_11.json`` was written by the code before issue 11: a
share to an agency without a key, its correction and its erasure passed on, a share made orally
in a meeting and a refusal, each with the bodies that code published on ``keten.events`` and
addressed to the recipient's inbox.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

from services.data_sharing.application import DataSharingUseCases
from services.data_sharing.domain import Decision, RefusedShare, Share, ShareRequest
from shared.caseview import ContactPointFacts
from shared.contracts.envelope import encode_event
from shared.sealed import Sealed

BEFORE = json.loads(
    (Path(__file__).parent / "data" / "data_sharing_events_before_issue_11.json").read_text(encoding="utf-8")
)["events"]
MITROS = "woningcorporatie-mitros"


@pytest.fixture
def sharing(memory_settings):
    """data_sharing's store holding the events as the previous code stored them."""
    sharing = DataSharingUseCases(memory_settings)
    sharing.recorder.insert_events(
        [
            StoredEvent(
                originator_id=uuid.UUID(event["originator_id"]),
                originator_version=event["originator_version"],
                topic=event["topic"],
                state=event["state"].encode(),
            )
            for event in BEFORE
        ]
    )
    return sharing


def stored(sharing):
    return [
        sharing.mapper.to_domain_event(n) for n in sharing.recorder.select_notifications(start=1, limit=100)
    ]


def test_a_share_stored_before_replays_with_its_correction_and_its_erasure(sharing):
    [shared, refused, corrected, _, oral] = BEFORE
    share = sharing.repository.get(uuid.UUID(shared["originator_id"]))
    assert isinstance(share, Share)
    assert (share.to_agency, share.categories, share.override_id) == (MITROS, ("debts",), None)
    assert share.correction_ids == (uuid.UUID(json.loads(corrected["state"])["correction_id"]["_data_"]),)
    assert share.erasure_passed_on
    refusal = sharing.repository.get(uuid.UUID(refused["originator_id"]))
    assert isinstance(refusal, RefusedShare) and refusal.reason_code == "category_not_brought"
    in_meeting = sharing.repository.get(uuid.UUID(oral["originator_id"]))
    assert (in_meeting.to_agency, in_meeting.erasure_passed_on) == (MITROS, False)


def told_now(told_before: str) -> str:
    """An inbox message as it was told before, as it is told now: the contact point's function
    (free text) no longer in the open (issue 12), everything else byte for byte the same."""
    message = json.loads(told_before)
    if message["message"] == "ShareReceived":
        message["data"]["contact_point"]["function"] = None
    return json.dumps(message, separators=(",", ":"))


def test_events_stored_before_are_published_and_told_to_their_recipient_as_before(sharing):
    for before, event in zip(BEFORE, stored(sharing), strict=True):
        assert encode_event(event, "data_sharing", before["position"]).body.decode() == before["published"]
        assert [m.body.decode() for m in sharing.inbox_messages(event)] == [
            told_now(m) for m in before["inbox"]
        ]
    shared = stored(sharing)[0]
    assert isinstance(shared, Share.DataShared)
    # Stored before the function was sealed: it reads as the plain text it was stored as.
    assert shared.contact == ContactPointFacts("gemeente-utrecht", "casusregisseur schulden")


def test_a_share_recorded_now_is_stored_in_the_shape_of_one_stored_before(sharing):
    request = ShareRequest(
        request_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        subject="a" * 32,
        from_agency="gemeente-utrecht",
        to_agency=MITROS,
        categories=("debts",),
        purpose="debt_assistance",
    )
    allowed = Decision(True, "allowed", sender_ground="statutory_task", recipient_ground="consent")
    share = Share.record(
        request,
        allowed,
        content=Sealed("k", b"c"),
        contact_point=ContactPointFacts("gemeente-utrecht", "casusregisseur schulden"),
        catalogue_version="test",
        correlation_id="c",
    )
    share.correct(uuid.uuid4(), "gemeente-utrecht", "factual_error", Sealed("k", b"d"), "c")
    share.pass_on_erasure("erasure", datetime.now(UTC))
    refusal = RefusedShare.record(
        request,
        Decision(False, "category_not_agreed", {"agency": MITROS, "category": "debts"}),
        reason="not agreed",
        visible_to_subject=False,
        catalogue_version="test",
        correlation_id="c",
    )
    now = [sharing.mapper.to_stored_event(e) for e in (*share.collect_events(), *refusal.collect_events())]
    [shared, refused, corrected, passed_on, _] = BEFORE
    # Fields added since (with a default, so the events stored before still load) come last;
    # an erasure passed on names whose records it concerns (for the processing log).
    added_since = {
        "RefusedShare.ShareRefused": ["part_of", "provision"],
        "Share.DataShared": ["provision", "special_provisions", "also_about"],
        passed_on["topic"].rsplit(":", 1)[1]: ["subject"],
        # a correction names the share's categories and the citizen's request it answers
        "Share.ShareCorrected": ["categories", "in_answer_to", "answer", "answer_reason"],
    }
    for new, old in zip(now, (shared, corrected, passed_on, refused), strict=True):
        assert new.topic == old["topic"]
        added = added_since.get(new.topic.rsplit(":", 1)[1], [])
        assert list(json.loads(new.state)) == [*json.loads(old["state"]), *added], new.topic
    # The contact point and the special grounds stay plain mappings in the store.
    state, state_before = json.loads(now[0].state), json.loads(shared["state"])
    assert list(state["contact_point"]) == list(state_before["contact_point"]) == ["agency", "function"]
    assert state["special_grounds"] == state_before["special_grounds"] == {}
