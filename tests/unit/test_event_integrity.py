"""What the consumers rely on, on in-memory stores: events signed by their service's key, the
chain of positions in each envelope, and pages of events served from a log."""

from __future__ import annotations

import json

import pytest

from services.case_registration.application import CaseRegistrationUseCases
from shared.catchup import CatchUpUnavailable, PageRequest, published_events_page, read_page
from shared.config import generate_secret
from shared.contracts.commands import ActivateCase, RegisterCaseSchema
from shared.contracts.envelope import decode_event, encode_event
from shared.errors import NotAuthorised
from shared.provenance import EventKeys
from shared.relay import EventRelay
from tests.factories import case_command, loaded

OLD, NEW = generate_secret().encode(), generate_secret().encode()


@pytest.fixture
def registration(memory_settings):
    app = CaseRegistrationUseCases(memory_settings)
    for _ in range(2):
        status = app.register_case(loaded(RegisterCaseSchema, case_command(), app.settings))
        app.activate_case(ActivateCase(agency="gemeente-utrecht", case_id=status.case_id))
    return app


class RecordingPublisher:
    def __init__(self) -> None:
        self.messages: list = []

    def publish(self, messages, exchange=None) -> None:
        self.messages.extend(m for m in messages if m.routing_key.startswith("case_registration."))


def relayed(app) -> list:
    publisher = RecordingPublisher()
    EventRelay(app, "case_registration", publisher).publish_pending()  # type: ignore[arg-type]
    return publisher.messages


def test_an_event_verifies_as_its_services_and_any_change_to_it_does_not():
    keys = EventKeys(NEW).know("case_registration", "consent")
    body = b'{"event": "CaseRegistered"}'
    signature = EventKeys(NEW).sign("case_registration", body)
    assert keys.signer(signature.key_id, signature.signature, body) == "case_registration"
    with pytest.raises(NotAuthorised) as changed:
        keys.signer(signature.key_id, signature.signature, body.replace(b"Registered", b"Closed"))
    assert changed.value.code == "bad_signature"
    with pytest.raises(NotAuthorised) as unsigned:
        keys.signer(None, None, body)
    assert unsigned.value.code == "unsigned"
    outsider = EventKeys(OLD).sign("case_registration", body)
    with pytest.raises(NotAuthorised):
        keys.signer(outsider.key_id, outsider.signature, body)


def test_during_a_master_key_rotation_events_signed_with_either_key_verify():
    body = b"{}"
    rotating = EventKeys(NEW, previous_master_key=OLD).know("consent")
    for master in (OLD, NEW):
        signature = EventKeys(master).sign("consent", body)
        assert rotating.signer(signature.key_id, signature.signature, body) == "consent"
    # A process that still runs with only the old key refuses what the new one signs.
    new = EventKeys(NEW).sign("consent", body)
    with pytest.raises(NotAuthorised):
        EventKeys(OLD).know("consent").signer(new.key_id, new.signature, body)


def test_each_published_event_names_the_latest_earlier_event_of_each_kind(registration):
    messages = relayed(registration)
    events = [decode_event(m.body) for m in messages]
    assert [e.name for e in events] == ["CaseRegistered", "CaseActivated", "CaseRegistered", "CaseActivated"]
    first, activated, second, last = events
    assert first.previous == {} and first.expected_position(["CaseRegistered"]) == 0
    assert activated.previous == {"CaseRegistered": first.position}
    assert second.previous == {"CaseRegistered": first.position, "CaseActivated": activated.position}
    # A consumer of registrations only expects the first registration before the second ...
    assert second.expected_position(["CaseRegistered"]) == first.position
    # ... and one of both kinds the activation right before it.
    assert last.expected_position(["CaseRegistered", "CaseActivated"]) == second.position
    keys = EventKeys.for_settings(registration.settings).know("case_registration")
    for message in messages:
        headers = message.headers
        assert (
            keys.signer(headers["keten-key-id"], headers["keten-signature"], message.body)
            == "case_registration"
        )


def test_a_relay_that_starts_again_continues_the_same_chain(registration):
    relayed(registration)
    registration.register_case(loaded(RegisterCaseSchema, case_command(), registration.settings))
    [later] = [decode_event(m.body) for m in relayed(registration)]  # a new relay, from the store
    assert later.previous == {"CaseRegistered": 3, "CaseActivated": 4}


def test_a_page_from_the_log_holds_the_kinds_asked_for_and_nothing_can_be_taken_out(registration):
    asked = PageRequest(stream="case_registration", after=0, before=100, kinds=("CaseRegistered",))
    answer = published_events_page(registration, asked.as_dict())
    keys = EventKeys.for_settings(registration.settings).know("case_registration")
    page = read_page(keys, "case_registration", asked, answer)
    assert [(e.name, e.position) for e, _ in page.events] == [("CaseRegistered", 1), ("CaseRegistered", 3)]
    assert page.until == 4, "covered up to the newest stored event"

    tampered = json.loads(answer["page"])
    tampered["events"] = tampered["events"][1:]
    with pytest.raises(CatchUpUnavailable):
        read_page(keys, "case_registration", asked, {**answer, "page": json.dumps(tampered)})
    with pytest.raises(CatchUpUnavailable):  # an answer to another question
        read_page(
            keys, "case_registration", PageRequest("case_registration", 1, 100, ("CaseRegistered",)), answer
        )


def test_a_caught_up_event_is_the_same_event_as_the_relayed_one(registration):
    relayed_events = {e.position: e for e in (decode_event(m.body) for m in relayed(registration))}
    [notification] = registration.recorder.select_notifications(start=1, limit=1)
    again = encode_event(
        registration.mapper.to_domain_event(notification), "case_registration", notification.id
    )
    assert again is not None
    caught = decode_event(again.body)
    assert caught.previous is None, "a page's events carry no chain: the page covers the range"
    assert (caught.message_id, caught.digest) == (relayed_events[1].message_id, relayed_events[1].digest)
