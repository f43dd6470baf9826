"""A citizen's correction request (AVG art. 16) granted runs rule 6: the agency runs the correction
through data_sharing with ``in_answer_to``, every recipient is told, and consent answers the
request with the platform's text naming what was corrected. Granting one without a correction
run is refused, unless the agency states that nothing of it was shared through Keten."""

from __future__ import annotations

import uuid

import pytest

from shared.errors import KetenError
from tests.factories import share_command
from tests.unit.test_citizen_requests import REASON, agency_command, ask, platform  # noqa: F401

CORRECTED = "Twee maanden huurachterstand, april en mei."


@pytest.fixture
def shared(platform):  # noqa: F811
    """The municipality shared the citizen's debts with the credit bank."""
    decisions = platform.command("data_sharing", "request_share", share_command(platform.case_id))
    [decision] = decisions["decisions"]
    assert decision["outcome"] == "shared"
    platform.sync()
    return decision["share_id"]


def correct(platform, share_id, **fields):  # noqa: F811
    command = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "correction_id": str(uuid.uuid4()),
        "share_id": share_id,
        "content": CORRECTED,
        "reason_code": "factual_error",
        **fields,
    }
    try:
        return platform.command("data_sharing", "correct_share", command)
    finally:
        platform.sync()


def mine(platform, request_id):  # noqa: F811
    found = platform.services["consent"].citizen_requests(platform.citizen)["requests"]
    return next(r for r in found if r["request_id"] == request_id)


def test_granting_a_correction_without_running_it_is_refused_with_the_way_to_do_it(platform, shared):  # noqa: F811
    request = ask(platform, kind="correction", text="Het zijn twee maanden achterstand, niet drie.")
    with pytest.raises(KetenError) as refused:
        agency_command(
            "answer_citizen_request",
            platform,
            request_id=request["request_id"],
            outcome="granted",
            reason=REASON,
        )
    assert (refused.value.status, refused.value.code) == (409, "correction_not_run")
    assert "correct_share" in refused.value.message and "in_answer_to" in refused.value.message
    assert mine(platform, request["request_id"])["status"] == "open"
    refused_answer = agency_command(
        "answer_citizen_request", platform, request_id=request["request_id"], outcome="refused", reason=REASON
    )
    assert refused_answer["status"] == "answered", "a refusal needs no correction"


def test_a_correction_run_for_the_request_answers_it_and_reaches_every_recipient(platform, shared):  # noqa: F811
    request = ask(platform, kind="correction", text="Het zijn twee maanden achterstand, niet drie.")
    correct(platform, shared, in_answer_to=request["request_id"])

    seen = mine(platform, request["request_id"])
    assert seen["status"] == "answered"
    assert [s["step"] for s in seen["steps"]] == ["received", "corrected", "answered"]
    answered = seen["steps"][-1]
    assert answered["outcome"] == "granted"
    assert "verbeterd" in answered["reason"]["nl"] and "schulden" in answered["reason"]["nl"].lower()
    assert "corrected" in answered["reason"]["en"]
    # rule 6: the recipient's inbox has the correction, and the citizen's overview shows it
    sharing = platform.apps["data_sharing"]
    events = [sharing.mapper.to_domain_event(n) for n in sharing.recorder.select_notifications(1, 1000)]
    corrected = [e for e in events if type(e).__name__ == "ShareCorrected"]
    assert [str(e.in_answer_to) for e in corrected] == [request["request_id"]]
    assert [m.routing_key for e in corrected for m in sharing.inbox_messages(e)] == [
        "kredietbank-utrecht.ShareCorrected"
    ]
    [case] = platform.services["notification"].get_overview(platform.citizen, "nl")["cases"]
    assert any(share.get("corrections") for share in case["shares"]), "the citizen sees the correction"


def test_a_partly_granted_correction_says_what_was_not_corrected(platform, shared):  # noqa: F811
    request = ask(platform, kind="correction", text="Twee maanden, en mijn adres klopt ook niet.")
    rest = {"nl": "Uw adres hebben wij niet gedeeld.", "en": "We did not share your address."}
    correct(platform, shared, in_answer_to=request["request_id"], answer="partly_granted", answer_reason=rest)
    answered = mine(platform, request["request_id"])["steps"][-1]
    assert answered["outcome"] == "partly_granted"
    assert answered["reason"]["nl"].endswith(rest["nl"]) and answered["reason"]["en"].endswith(rest["en"])


def test_a_pending_correction_is_recorded_and_the_agency_answers_later(platform, shared):  # noqa: F811
    request = ask(platform, kind="correction", text="Het zijn twee maanden achterstand.")
    correct(platform, shared, in_answer_to=request["request_id"], answer="pending")
    seen = mine(platform, request["request_id"])
    assert seen["status"] == "open" and [s["step"] for s in seen["steps"]] == ["received", "corrected"]
    answer = agency_command(
        "answer_citizen_request", platform, request_id=request["request_id"], outcome="granted", reason=REASON
    )
    assert answer["status"] == "answered"


def test_nothing_shared_grants_a_correction_of_data_kept_outside_keten(platform):  # noqa: F811
    request = ask(platform, kind="correction", text="Mijn geboortedatum in uw dossier klopt niet.")
    answer = agency_command(
        "answer_citizen_request",
        platform,
        request_id=request["request_id"],
        outcome="granted",
        reason=REASON,
        nothing_shared=True,
    )
    assert answer["status"] == "answered"
    question = ask(platform)
    with pytest.raises(KetenError) as refused:
        agency_command(
            "answer_citizen_request",
            platform,
            request_id=question["request_id"],
            outcome="granted",
            reason=REASON,
            nothing_shared=True,
        )
    assert (refused.value.status, refused.value.code) == (400, "invalid_answer")


def test_a_correction_for_another_agencys_or_kinds_request_answers_nothing(platform, shared):  # noqa: F811
    question = ask(platform)
    correction = ask(platform, kind="correction", text="Twee maanden.", agency="kredietbank-utrecht")
    for request in (question, correction):
        correct(platform, shared, in_answer_to=request["request_id"])
        assert mine(platform, request["request_id"])["status"] == "open"


def test_answer_goes_with_in_answer_to(platform, shared):  # noqa: F811
    with pytest.raises(KetenError) as refused:
        correct(platform, shared, answer="granted")
    assert refused.value.status == 400
    with pytest.raises(KetenError) as no_reason:
        correct(platform, shared, in_answer_to=str(uuid.uuid4()), answer="partly_granted")
    assert (no_reason.value.status, no_reason.value.field) == (400, "answer_reason")


def test_a_request_answered_before_nothing_shared_existed_still_loads(platform):  # noqa: F811
    """An answer stored before ``nothing_shared`` (and a request before ``corrections``) replays."""
    import json as _json

    from eventsourcing.persistence import StoredEvent

    request = ask(platform)
    agency_command(
        "answer_citizen_request", platform, request_id=request["request_id"], outcome="refused", reason=REASON
    )
    app = platform.apps["consent"]
    stored = app.recorder.select_events(uuid.UUID(request["request_id"]))
    answered = stored[-1]
    state = _json.loads(answered.state)
    assert state.pop("nothing_shared") is False
    before = StoredEvent(
        answered.originator_id, answered.originator_version, answered.topic, _json.dumps(state).encode()
    )
    aggregate = None
    for event in [app.mapper.to_domain_event(e) for e in (*stored[:-1], before)]:
        aggregate = event.mutate(aggregate)
    assert aggregate.status == "answered" and aggregate.corrections == ()
