"""Free text in the contracts (docs/architecture.md, "Free text in the contracts"): fields the
platform keeps in the open take an identifier or a code and refuse a name, naming the field and
never repeating what was typed; fields where words belong are sealed before they are stored."""

from __future__ import annotations

import json
import uuid

import pytest

from services.case_registration.application import CaseRegistrationUseCases
from shared.contracts.commands import (
    CloseCaseSchema,
    GiveConsentSchema,
    PlaceLegalHoldSchema,
    RegisterCaseSchema,
    RequestShareSchema,
)
from shared.errors import InvalidRequest
from tests.factories import case_command, consent_command, loaded, share_command

A_NAME = "Sanne de Vries"
CASE_ID = str(uuid.uuid4())


def hold_command(**changes: object) -> dict[str, object]:
    return {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "case_id": CASE_ID,
        "reason_code": "complaint",
    } | changes


def close_command(**changes: object) -> dict[str, object]:
    return {"schema_version": 1, "agency": "gemeente-utrecht", "case_id": CASE_ID} | changes


@pytest.mark.parametrize(
    ("schema", "command", "field"),
    [
        (RequestShareSchema, share_command(CASE_ID, meeting_id=A_NAME), "meeting_id"),
        (RequestShareSchema, share_command(CASE_ID, meeting_id="overleg-met-sanne"), "meeting_id"),
        (GiveConsentSchema, consent_command(CASE_ID, notice_version=A_NAME), "notice_version"),
        (PlaceLegalHoldSchema, hold_command(reference="Jansen"), "reference"),
        (CloseCaseSchema, close_command(outcome="sanne_de_vries"), "outcome"),
    ],
)
def test_a_name_is_refused_where_the_platform_keeps_an_identifier_in_the_open(
    schema, command, field, memory_settings
):
    with pytest.raises(InvalidRequest) as refused:
        loaded(schema, command, memory_settings)
    assert (refused.value.code, refused.value.field) == ("invalid_field", field)
    assert "Sanne" not in refused.value.message and "Jansen" not in refused.value.message


@pytest.mark.parametrize(
    ("schema", "command"),
    [
        (RequestShareSchema, share_command(CASE_ID, meeting_id="overleg-2026-12")),
        (GiveConsentSchema, consent_command(CASE_ID, notice_version="debt-2026-1")),
        (PlaceLegalHoldSchema, hold_command(reference="KL-2026/0042")),
        (CloseCaseSchema, close_command(outcome="help_arranged")),
    ],
)
def test_identifiers_and_codes_are_taken(schema, command, memory_settings):
    loaded(schema, command, memory_settings)


def test_the_contact_points_function_is_taken_as_typed_and_stored_sealed(memory_settings):
    registration = CaseRegistrationUseCases(memory_settings)
    command = case_command(contact_point={"agency": "gemeente-utrecht", "function": A_NAME})
    status = registration.register_case(loaded(RegisterCaseSchema, command, memory_settings))
    [stored] = registration.recorder.select_events(status.case_id)
    assert A_NAME not in stored.state.decode()
    case = registration.repository.get(status.case_id)
    assert registration.vault.open(case.contact_point.function) == A_NAME
    assert json.loads(stored.state)["contact_point"]["_data_"]["function"]["_type_"] == "sealed"


def test_a_participants_role_is_one_the_catalogues_tables_name(memory_settings):
    registration = CaseRegistrationUseCases(memory_settings)
    command = case_command()
    command["participants"][1]["role"] = "sanne_de_vries"
    with pytest.raises(InvalidRequest) as refused:
        registration.register_case(loaded(RegisterCaseSchema, command, memory_settings))
    assert (refused.value.code, refused.value.field) == ("invalid_case", "participants")
    assert "sanne" not in refused.value.message
