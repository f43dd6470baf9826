"""Each message schema loads into its frozen dataclass, and a BSN never gets past the load."""

from __future__ import annotations

import dataclasses

import pytest
from marshmallow.utils import missing

import shared.contracts  # noqa: F401  (every schema registers itself on import)
from keten.demo import CITIZEN
from shared.contracts.commands import (
    COMMAND_SCHEMAS,
    Command,
    GiveConsentSchema,
    RegisterCaseSchema,
    load_command,
)
from shared.contracts.events import EVENT_SCHEMAS
from shared.contracts.typed import TypedSchema
from shared.errors import InvalidRequest
from shared.pseudonym import Pseudonymiser, pseudonymise
from tests.factories import case_command, consent_command, family_case_command, loaded

SECRET = b"s" * 32


def typed_schemas() -> list[type[TypedSchema[object]]]:
    found, todo = [], list(TypedSchema.__subclasses__())
    while todo:
        schema = todo.pop()
        todo.extend(schema.__subclasses__())
        if schema.loads_into is not None:
            found.append(schema)
    return sorted(found, key=lambda s: s.__name__)


@pytest.mark.parametrize("schema", typed_schemas(), ids=lambda s: s.__name__)
def test_a_schema_loads_into_a_frozen_dataclass_beside_it_with_one_attribute_per_field(schema):
    into = schema.loads_into
    assert dataclasses.is_dataclass(into)
    assert into.__dataclass_params__.frozen
    assert into.__module__ == schema.__module__
    names = [name for name in schema._declared_fields if name not in schema.checked_only]
    assert [field.name for field in dataclasses.fields(into)] == names
    for field in dataclasses.fields(into):
        declared = schema._declared_fields[field.name]
        may_be_absent = not declared.required and declared.load_default is missing
        if may_be_absent:
            has_default = (
                field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
            )
            assert has_default, f"{into.__name__}.{field.name} needs a default: the field may be absent"


def test_every_event_loads_into_the_dataclass_of_its_name():
    for name, schema in EVENT_SCHEMAS.items():
        assert schema.loads_into is not None and schema.loads_into.__name__ == name


def test_every_command_loads_into_a_command_with_an_imperative_name():
    for name, schema in COMMAND_SCHEMAS.items():
        assert issubclass(schema.loads_into, Command)
        assert schema.loads_into.__name__ == "".join(part.title() for part in name.split("_"))


def test_a_loaded_command_carries_pseudonyms_never_a_bsn():
    command = family_case_command()
    registered = loaded_with_secret(RegisterCaseSchema, command)
    for given, subject in zip(command["subjects"], registered.subjects, strict=True):
        assert subject.pseudonym == pseudonymise(given["bsn"], SECRET)
    mother = pseudonymise(command["subjects"][0]["bsn"], SECRET)
    assert [s.represented_by for s in registered.subjects] == [None, None, mother, mother]
    assert all(given["bsn"] not in repr(registered) for given in command["subjects"])

    consent = loaded_with_secret(GiveConsentSchema, consent_command("9b2f7e4e-4c1a-4d7e-9a57-3f1f6c1d2a10"))
    assert consent.subject == pseudonymise(CITIZEN["bsn"], SECRET)
    assert CITIZEN["bsn"] not in repr(consent)


def test_a_command_with_a_bsn_cannot_be_loaded_without_the_pseudonymiser():
    with pytest.raises(TypeError, match="pseudonymise"):
        load_command(RegisterCaseSchema, case_command())


def test_a_bad_bsn_is_refused_under_its_wire_name_before_anything_is_pseudonymised(memory_settings):
    command = consent_command("9b2f7e4e-4c1a-4d7e-9a57-3f1f6c1d2a10", subject_bsn="123456789")
    with pytest.raises(InvalidRequest) as error:
        loaded(GiveConsentSchema, command, memory_settings)
    assert (error.value.field, error.value.message) == (
        "subject_bsn",
        "this number fails the BSN eleven-test",
    )


def loaded_with_secret(schema, command):
    return load_command(schema, command, pseudonymise=Pseudonymiser(SECRET))
