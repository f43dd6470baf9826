"""consent's stored events keep their shape. ``SafetyOverride.record`` takes who recorded it
and the deferral as value objects now; the stored ``SafetyOverrideRecorded`` still holds them
as plain JSON objects, so overrides stored before that change load and publish as they did."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

from eventsourcing.persistence import StoredEvent

from services.case_registration.application import CaseRegistrationUseCases
from services.consent.application import ConsentUseCases
from services.consent.domain import OverrideScope, Professional
from shared.contracts.commands import RecordSafetyOverrideSchema, RegisterCaseSchema
from shared.contracts.envelope import encode_event
from tests.factories import MOTHER, family_case_command, loaded, override_command, received

OVERRIDE_ID = uuid.UUID("0f0f0f0f-0000-4000-8000-000000000001")

#: An override recorded and ended as the consent service stored it before ``Professional`` and
#: ``NoticeDeferral`` existed (topic and state copied from its store).
STORED_BEFORE = [
    (
        "services.consent.domain:SafetyOverride.SafetyOverrideRecorded",
        '{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-07T09:11:03.013922+00:00"},'
        '"originator_topic":"services.consent.domain:SafetyOverride",'
        '"case_id":{"_type_":"uuid_hex","_data_":"0f0f0f0f000040008000000000000002"},'
        '"subjects":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],"categories":["health"],'
        '"recipients":["ggd-regio-utrecht"],"ground":"safety_of_child",'
        '"reasons":{"_type_":"sealed","_data_":{"k":"0f0f0f0f-0000-4000-8000-000000000002",'
        '"c":"wdIWNABZt+/+iWCRx7RjiRRVd4A2i56L7Xci9Ko94w=="}},'
        '"recorded_by":{"agency":"gemeente-utrecht","function":"casusregisseur"},'
        '"ends_on":{"_type_":"date_iso","_data_":"2031-01-01"},'
        '"explanation":{"_type_":"sealed","_data_":{"k":"0f0f0f0f-0000-4000-8000-000000000002",'
        '"c":"lkm/7qXAoglMUsMs6DDwsd61UNJoKJAveiSla0MLGg=="}},'
        '"deferral":{"reason":{"_type_":"sealed","_data_":{"k":"0f0f0f0f-0000-4000-8000-000000000002",'
        '"c":"GDh2JGsrRIyphIKXIPGIFYlkTbyB8JTECHtJ7K/M+Q=="}},'
        '"review_on":{"_type_":"date_iso","_data_":"2030-06-01"}},"catalogue_version":"v1"}',
    ),
    (
        "services.consent.domain:SafetyOverride.SafetyOverrideEnded",
        '{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-07T09:11:03.014201+00:00"},'
        '"case_id":{"_type_":"uuid_hex","_data_":"0f0f0f0f000040008000000000000002"},'
        '"reason_code":"risk_gone","ended_by":"gemeente-utrecht"}',
    ),
]


def store_old_override(app: ConsentUseCases) -> None:
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=OVERRIDE_ID, originator_version=version, topic=topic, state=state.encode()
            )
            for version, (topic, state) in enumerate(STORED_BEFORE, start=1)
        ]
    )


def shape(value: Any) -> Any:
    """A stored state with its values left out: the keys, the nesting and each transcoded
    value's type."""
    if isinstance(value, dict):
        if "_type_" in value:
            return {"_type_": value["_type_"]}
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def test_an_override_stored_before_the_value_objects_still_loads(memory_settings):
    consent = ConsentUseCases(memory_settings)
    store_old_override(consent)
    override = consent.repository.get(OVERRIDE_ID)
    assert override.recorded_by == Professional(agency="gemeente-utrecht", function="casusregisseur")
    assert override.scope == OverrideScope(("a" * 32,), ("health",), ("ggd-regio-utrecht",))
    assert (override.ends_on, override.ended) == (date(2031, 1, 1), True)


def test_an_override_stored_before_the_value_objects_is_published_as_it_was(memory_settings):
    consent = ConsentUseCases(memory_settings)
    store_old_override(consent)
    [recorded, _] = consent.recorder.select_notifications(start=1, limit=10)
    message = encode_event(consent.mapper.to_domain_event(recorded), "consent", recorded.id)
    assert message is not None
    data = json.loads(message.body)["data"]
    assert data["recorded_by"] == {"agency": "gemeente-utrecht", "function": "casusregisseur"}
    assert data["deferral"]["review_on"] == "2030-06-01"
    assert data["deferral"]["reason"]["key_id"] == "0f0f0f0f-0000-4000-8000-000000000002"


def test_an_override_recorded_now_is_stored_in_the_shape_of_one_recorded_before(memory_settings):
    registration = CaseRegistrationUseCases(memory_settings)
    consent = ConsentUseCases(memory_settings)
    case = registration.register_case(loaded(RegisterCaseSchema, family_case_command(), memory_settings))
    for event in received(registration):
        consent.cases.apply(event)
    review_on = (date.today() + timedelta(days=14)).isoformat()
    command = override_command(
        str(case.case_id), [MOTHER["bsn"]], deferral={"reason": "Nog niet vertellen.", "review_on": review_on}
    )
    status = consent.record_safety_override(loaded(RecordSafetyOverrideSchema, command, memory_settings))
    [stored] = consent.recorder.select_events(status.override_id)
    assert stored.topic == STORED_BEFORE[0][0]
    before = shape(json.loads(STORED_BEFORE[0][1]))
    # The one change since: the professional's function is sealed (issue 12), as reasons are.
    before["recorded_by"]["function"] = {"_type_": "sealed"}
    state = json.loads(stored.state)
    # The trace context of the processing is kept beside the event's fields (shared.ldv).
    assert state.pop("traceparent").startswith("00-")
    assert shape(state) == before
    assert "aandachtsfunctionaris" not in stored.state.decode()
