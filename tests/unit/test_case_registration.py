import uuid

import pytest

from services.case_registration.application import CaseRegistrationUseCases, CaseStatus
from shared.contracts.commands import (
    ActivateCase,
    AddParticipantSchema,
    CloseCase,
    RegisterCaseSchema,
    RemoveParticipant,
)
from shared.contracts.events.case_registration import CaseRegistered
from shared.errors import Conflict, InvalidRequest, NotAuthorised, NotFound
from tests.factories import case_command, loaded, received

UTRECHT = "gemeente-utrecht"


@pytest.fixture
def registration(memory_settings):
    return CaseRegistrationUseCases(memory_settings)


def register(app, **changes):
    return app.register_case(loaded(RegisterCaseSchema, case_command(**changes), app.settings))


def published(app, name):
    """The data of each event ``name`` the application published, as other services read it."""
    return [event.data for event in received(app) if event.name == name]


def test_registering_a_case_records_its_table_purpose_agencies_and_agreement(registration):
    status = register(registration)
    assert status.status == "registered"
    [registered] = published(registration, "CaseRegistered")
    assert isinstance(registered, CaseRegistered) and registered.case_id == status.case_id
    assert [p.agency for p in registered.participants] == [
        "gemeente-utrecht",
        "kredietbank-utrecht",
        "woningcorporatie-mitros",
    ]
    # No agreement given: the table's standard agreement for these participants.
    lines = {line.agency: line for line in registered.agreement}
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
    assert again == first == CaseStatus(uuid.UUID(command["case_id"]), "registered")
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


def test_activating_a_case_starts_the_tables_work_once(registration):
    case_id = register(registration).case_id
    activate = ActivateCase(agency=UTRECHT, case_id=case_id)
    assert registration.activate_case(activate) == CaseStatus(case_id, "active")
    assert registration.activate_case(activate) == CaseStatus(case_id, "active")
    assert len(published(registration, "CaseActivated")) == 1


def test_closing_a_case_records_the_outcome(registration):
    case_id = register(registration).case_id
    close = CloseCase(agency=UTRECHT, case_id=case_id, outcome="help_arranged")
    assert registration.close_case(close) == CaseStatus(case_id, "closed")
    [closed] = published(registration, "CaseClosed")
    assert (closed.case_id, closed.outcome, closed.closed_by) == (case_id, "help_arranged", UTRECHT)
    with pytest.raises(Conflict):
        registration.close_case(close)


def test_a_participant_joins_with_the_tables_standard_line_and_leaves_with_its_reason_sealed(registration):
    case_id = register(registration, participants=case_command()["participants"][:2]).case_id
    join = {
        "schema_version": 1,
        "agency": UTRECHT,
        "case_id": str(case_id),
        "participant": {
            "agency": "woningcorporatie-mitros",
            "role": "housing_provider",
            "legal_ground": "consent",
        },
        "reason": "De huurachterstand loopt op.",
    }
    added = registration.add_participant(loaded(AddParticipantSchema, join, registration.settings))
    assert added == CaseStatus(case_id, "registered")
    [joined] = published(registration, "ParticipantAdded")
    assert joined.participant.agency == "woningcorporatie-mitros"
    assert joined.agreement.receive == ("professional_conclusion",)

    leave = RemoveParticipant(
        agency=UTRECHT, case_id=case_id, participant="woningcorporatie-mitros", reason="Niet meer nodig."
    )
    assert registration.remove_participant(leave) == CaseStatus(case_id, "registered")
    [left] = published(registration, "ParticipantRemoved")
    assert left.agency == "woningcorporatie-mitros"
    assert registration.vault.open(left.reason) == "Niet meer nodig."


def test_a_change_to_a_case_that_does_not_exist_is_not_found(registration):
    with pytest.raises(NotFound):
        registration.activate_case(ActivateCase(agency=UTRECHT, case_id=uuid.uuid4()))
