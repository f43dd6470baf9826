"""Commands case_registration handles."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from marshmallow import RAISE, Schema, fields, validate

from shared.contracts.catalogue import CatalogueSchema
from shared.contracts.commands.base import Command, CommandSchema
from shared.contracts.fields import AgencyId, Bsn, Code, TableId
from shared.contracts.typed import TypedSchema


@dataclass(frozen=True, kw_only=True)
class SubjectInput:
    """A data subject as the registering agency gives them; the BSN is already a pseudonym."""

    pseudonym: str
    role: str
    minor: bool
    name: str
    email: str | None
    postal_address: str | None
    preferred_channel: str
    language: str
    represented_by: str | None


class SubjectInputSchema(TypedSchema[SubjectInput]):
    class Meta:
        unknown = RAISE

    pseudonym = Bsn(
        required=True, data_key="bsn", metadata={"description": "validated, then replaced by a pseudonym"}
    )
    role = Code(required=True, metadata={"example": "citizen"})
    minor = fields.Boolean(load_default=False)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(load_default=None)
    postal_address = fields.String(load_default=None, validate=validate.Length(max=500))
    preferred_channel = fields.String(
        load_default="portal", validate=validate.OneOf(["email", "letter", "portal"])
    )
    language = fields.String(load_default="nl", validate=validate.OneOf(["nl", "en"]))
    represented_by = Bsn(
        load_default=None,
        data_key="represented_by_bsn",
        metadata={"description": "parent or legal representative"},
    )


@dataclass(frozen=True, kw_only=True)
class ParticipantInput:
    agency: str
    role: str
    legal_ground: str


class ParticipantInputSchema(TypedSchema[ParticipantInput]):
    class Meta:
        unknown = RAISE

    agency = AgencyId(required=True)
    role = Code(required=True)
    legal_ground = Code(required=True, metadata={"description": "the agency's own ground"})


@dataclass(frozen=True, kw_only=True)
class AgreementInput:
    agency: str
    bring: tuple[str, ...]
    receive: tuple[str, ...]


class AgreementInputSchema(TypedSchema[AgreementInput]):
    class Meta:
        unknown = RAISE

    agency = AgencyId(required=True)
    bring = fields.List(Code(), required=True)
    receive = fields.List(Code(), required=True)


@dataclass(frozen=True, kw_only=True)
class ContactPointInput:
    agency: str
    function: str


class ContactPointInputSchema(TypedSchema[ContactPointInput]):
    class Meta:
        unknown = RAISE

    agency = AgencyId(required=True)
    function = fields.String(
        required=True,
        validate=validate.Length(min=2, max=100),
        metadata={
            "description": "a function (e.g. 'casusregisseur'), never a person's name or own number;"
            " sealed at once under the case's key"
        },
    )


class CaseStatusSchema(Schema):
    """The case a command was about, and its status now."""

    case_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"example": "open"})


@dataclass(frozen=True, kw_only=True)
class RegisterCase(Command):
    case_id: UUID | None
    table: str
    purpose: str
    description: str | None
    subjects: tuple[SubjectInput, ...]
    participants: tuple[ParticipantInput, ...]
    agreement: tuple[AgreementInput, ...] | None
    record_holder: str
    retention_class: str | None
    contact_point: ContactPointInput
    participation: str
    informed_beforehand: bool


class RegisterCaseSchema(CommandSchema[RegisterCase]):
    """Registers a case at a consultation table."""

    command_name = "register_case"
    service = "case_registration"
    reply_schema = CaseStatusSchema

    case_id = fields.UUID(load_default=None, metadata={"description": "client-chosen id; repeat-safe"})
    table = TableId(required=True, metadata={"description": "consultation table id"})
    purpose = Code(required=True)
    description = fields.String(load_default=None, validate=validate.Length(max=4000))
    subjects = fields.List(fields.Nested(SubjectInputSchema), required=True, validate=validate.Length(min=1))
    participants = fields.List(
        fields.Nested(ParticipantInputSchema), required=True, validate=validate.Length(min=1)
    )
    agreement = fields.List(
        fields.Nested(AgreementInputSchema),
        load_default=None,
        metadata={"description": "default: the table's standard agreement"},
    )
    record_holder = AgencyId(required=True)
    retention_class = fields.String(load_default=None, metadata={"description": "default: the table's"})
    contact_point = fields.Nested(ContactPointInputSchema, required=True)
    participation = fields.String(
        required=True, validate=validate.OneOf(["attends", "represented", "informed_only"])
    )
    informed_beforehand = fields.Boolean(required=True)


#: How a case can end. The outcome is kept forever (the catalogue's ``outcome`` record kind), in
#: plain text, so it is one of these codes and nothing a professional types.
CASE_OUTCOMES = ("help_arranged", "referred", "no_help_needed", "help_declined", "transferred", "other")


@dataclass(frozen=True, kw_only=True)
class CloseCase(Command):
    case_id: UUID
    outcome: str


class CloseCaseSchema(CommandSchema[CloseCase]):
    """Closes a case with an outcome code (the outcome is kept without personal data)."""

    command_name = "close_case"
    service = "case_registration"
    reply_schema = CaseStatusSchema

    case_id = fields.UUID(required=True)
    outcome = fields.String(
        required=True,
        validate=validate.OneOf(CASE_OUTCOMES),
        metadata={"description": "kept forever, so one of these codes", "example": "help_arranged"},
    )


@dataclass(frozen=True, kw_only=True)
class ActivateCase(Command):
    case_id: UUID


class ActivateCaseSchema(CommandSchema[ActivateCase]):
    """Starts the table's work on a registered case: only then may data be shared in it."""

    command_name = "activate_case"
    service = "case_registration"
    reply_schema = CaseStatusSchema

    case_id = fields.UUID(required=True)


@dataclass(frozen=True, kw_only=True)
class AgreementLineInput:
    bring: tuple[str, ...]
    receive: tuple[str, ...]


class AgreementLineInputSchema(TypedSchema[AgreementLineInput]):
    class Meta:
        unknown = RAISE

    bring = fields.List(Code(), required=True)
    receive = fields.List(Code(), required=True)


REASON = validate.Length(min=1, max=2000)


@dataclass(frozen=True, kw_only=True)
class AddParticipant(Command):
    case_id: UUID
    participant: ParticipantInput
    agreement: AgreementLineInput | None
    reason: str


class AddParticipantSchema(CommandSchema[AddParticipant]):
    """Adds an agency to a case, with its role, its own legal ground and what it may bring and
    receive (default: the table's standard line for it)."""

    command_name = "add_participant"
    service = "case_registration"
    reply_schema = CaseStatusSchema

    case_id = fields.UUID(required=True)
    participant = fields.Nested(ParticipantInputSchema, required=True)
    agreement = fields.Nested(AgreementLineInputSchema, load_default=None)
    reason = fields.String(required=True, validate=REASON, metadata={"description": "sealed at once"})


@dataclass(frozen=True, kw_only=True)
class RemoveParticipant(Command):
    case_id: UUID
    participant: str
    reason: str


class RemoveParticipantSchema(CommandSchema[RemoveParticipant]):
    """Removes an agency from a case; it can no longer share or receive in it."""

    command_name = "remove_participant"
    service = "case_registration"
    reply_schema = CaseStatusSchema

    case_id = fields.UUID(required=True)
    participant = AgencyId(required=True, metadata={"description": "the agency that leaves"})
    reason = fields.String(required=True, validate=REASON, metadata={"description": "sealed at once"})


@dataclass(frozen=True, kw_only=True)
class GetCatalogue(Command):
    pass


class GetCatalogueSchema(CommandSchema[GetCatalogue]):
    """Asks for the catalogue the platform decides by: tables, who may bring and receive what,
    purposes, categories, grounds with their provisions of law, contact details, complaint
    routes and reason codes (also ``GET /api/catalogue``). Changes nothing."""

    command_name = "get_catalogue"
    service = "case_registration"
    reply_schema = CatalogueSchema
