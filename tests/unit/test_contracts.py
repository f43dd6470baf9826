import json
from uuid import uuid4

import pytest

from services.case_registration.application import CaseRegistrationUseCases
from shared.contracts.commands import RegisterCaseSchema
from shared.contracts.envelope import decode_event, encode_event
from shared.errors import InvalidRequest
from tests.factories import case_command, loaded


@pytest.fixture
def stored_event(memory_settings):
    app = CaseRegistrationUseCases(memory_settings)
    app.register_case(loaded(RegisterCaseSchema, case_command(), memory_settings))
    [notification] = app.recorder.select_notifications(start=1, limit=1)
    return app.mapper.to_domain_event(notification)


def test_an_event_travels_in_an_envelope_with_its_position(stored_event):
    message = encode_event(stored_event, "case_registration", 7)
    assert message.routing_key == "case_registration.CaseRegistered"
    event = decode_event(message.body)
    assert (event.name, event.source, event.position) == ("CaseRegistered", "case_registration", 7)
    assert event.data.case_id == stored_event.originator_id
    assert event.tracking.application_name == "case_registration"


def test_personal_data_travels_sealed(stored_event):
    body = encode_event(stored_event, "case_registration", 1).body.decode()
    assert "Sanne" not in body and "999990019" not in body and "example.org" not in body


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\xff\xfe not json", "not_json"),
        (b"[1, 2]", "invalid_message"),
        (json.dumps({"schema_version": 2}).encode(), "invalid_field"),
    ],
)
def test_a_malformed_message_is_refused_with_a_reason(body, code):
    with pytest.raises(InvalidRequest) as error:
        decode_event(body)
    assert error.value.code == code


def test_an_unknown_version_names_the_version_field(stored_event):
    envelope = json.loads(encode_event(stored_event, "case_registration", 1).body)
    envelope["schema_version"] = 9
    with pytest.raises(InvalidRequest) as error:
        decode_event(json.dumps(envelope))
    assert error.value.field == "schema_version"


def test_an_event_that_fails_its_schema_names_the_field(stored_event):
    envelope = json.loads(encode_event(stored_event, "case_registration", 1).body)
    envelope["data"]["subjects"][0]["pseudonym"] = "999990019"
    with pytest.raises(InvalidRequest) as error:
        decode_event(json.dumps(envelope))
    assert error.value.field == "data.subjects.0.pseudonym"
    assert "999990019" not in str(error.value)


def test_a_command_with_an_unknown_field_is_refused(memory_settings):
    command = case_command(colour="blue")
    with pytest.raises(InvalidRequest) as error:
        loaded(RegisterCaseSchema, command, memory_settings)
    assert error.value.field == "colour"


def test_a_command_with_a_bad_bsn_does_not_echo_it(memory_settings):
    command = case_command()
    command["subjects"][0]["bsn"] = "123456789"
    with pytest.raises(InvalidRequest) as error:
        loaded(RegisterCaseSchema, command, memory_settings)
    assert "123456789" not in str(error.value)
    assert error.value.field == "subjects.0.bsn"


def test_an_internal_event_is_not_published(memory_settings):
    from services.consent.domain import ConsentRecord

    record = ConsentRecord(case_id=uuid4(), subject="a" * 32)
    [opened] = record.collect_events()
    assert encode_event(opened, "consent", 1) is None


def test_an_error_names_the_field_without_repeating_what_the_sender_put_in_its_name():
    from shared.errors import first_error

    field, _ = first_error({"Sanne de Vries \udc30": ["Unknown field."]})
    assert field == "Sanne?de?Vries??"
    field, _ = first_error({"subjects": {"999990019": ["Unknown field."]}})
    assert field == "subjects.…"
