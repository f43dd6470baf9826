import pytest

from services.case_registration.application import CaseRegistration
from shared.contracts.commands import RegisterCaseSchema
from shared.errors import Conflict, InvalidRequest, NotAuthorised
from tests.factories import case_command, loaded


@pytest.fixture
def registration(memory_settings):
    return CaseRegistration(memory_settings)


def register(app, **changes):
    return app.register_case(loaded(RegisterCaseSchema, case_command(**changes), app.settings))


def test_registering_a_case_records_its_table_purpose_agencies_and_agreement(registration):
    case = register(registration)
    assert case.status == "registered"
    assert case.agencies == ("gemeente-utrecht", "kredietbank-utrecht", "woningcorporatie-mitros")
    # No agreement given: the table's standard agreement for these participants.
    lines = {line.agency: line for line in case.agreement}
    assert "debts" in lines["kredietbank-utrecht"].bring
    assert lines["woningcorporatie-mitros"].receive == ("professional_conclusion",)


def test_the_stored_event_holds_no_bsn_name_or_description_in_plaintext(registration):
    command = case_command()
    registration.register_case(loaded(RegisterCaseSchema, command, registration.settings))
    [notification] = registration.recorder.select_notifications(start=1, limit=10)
    stored = bytes(notification.state)
    subject = command["subjects"][0]
    for value in (subject["bsn"], subject["name"], subject["email"], command["description"]):
        assert value.encode() not in stored


def test_registering_the_same_case_again_changes_nothing(registration):
    command = case_command()
    first = registration.register_case(loaded(RegisterCaseSchema, command, registration.settings))
    again = registration.register_case(loaded(RegisterCaseSchema, command, registration.settings))
    assert again.id == first.id
    assert registration.recorder.max_notification_id() == 1


def test_another_agency_cannot_take_over_a_case_id(registration):
    command = case_command()
    registration.register_case(loaded(RegisterCaseSchema, command, registration.settings))
    command["agency"] = "kredietbank-utrecht"
    with pytest.raises(Conflict):
        registration.register_case(loaded(RegisterCaseSchema, command, registration.settings))


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"purpose": "youth_protection"}, InvalidRequest, "purpose"),
        ({"record_holder": "uwv"}, InvalidRequest, "record_holder"),
        ({"contact_point": {"agency": "uwv", "function": "klantmanager"}}, InvalidRequest, "contact_point"),
        ({"agency": "uwv"}, NotAuthorised, None),
    ],
)
def test_a_case_against_the_catalogue_is_refused_and_nothing_is_recorded(registration, changes, error, field):
    with pytest.raises(error) as raised:
        register(registration, **changes)
    assert raised.value.field == field
    assert registration.recorder.max_notification_id() is None


def test_an_agency_without_that_ground_for_the_purpose_is_refused(registration):
    participants = case_command()["participants"]
    participants[1] = {"agency": "kredietbank-utrecht", "role": "debt_counsellor", "legal_ground": "consent"}
    with pytest.raises(InvalidRequest, match="no ground 'consent'"):
        register(registration, participants=participants)


def test_closing_a_case_records_the_outcome(registration):
    case = register(registration)
    closed = registration.close_case(case.id, "gemeente-utrecht", "help_arranged")
    assert (closed.status, closed.outcome) == ("closed", "help_arranged")
    with pytest.raises(Conflict):
        registration.close_case(case.id, "gemeente-utrecht", "help_arranged")
