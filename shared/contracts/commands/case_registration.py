"""Commands case_registration handles."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from shared.contracts.commands.base import CommandSchema
from shared.contracts.fields import AgencyId, Bsn, Code, TableId


class SubjectInput(Schema):
    class Meta:
        unknown = RAISE

    bsn = Bsn(required=True, metadata={"description": "validated, then replaced by a pseudonym"})
    role = Code(required=True, metadata={"example": "citizen"})
    minor = fields.Boolean(load_default=False)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(load_default=None)
    postal_address = fields.String(load_default=None, validate=validate.Length(max=500))
    preferred_channel = fields.String(
        load_default="portal", validate=validate.OneOf(["email", "letter", "portal"])
    )
    language = fields.String(load_default="nl", validate=validate.OneOf(["nl", "en"]))
    represented_by_bsn = Bsn(load_default=None, metadata={"description": "parent or legal representative"})


class ParticipantInput(Schema):
    class Meta:
        unknown = RAISE

    agency = AgencyId(required=True)
    role = Code(required=True)
    legal_ground = Code(required=True, metadata={"description": "the agency's own ground"})


class AgreementInput(Schema):
    class Meta:
        unknown = RAISE

    agency = AgencyId(required=True)
    bring = fields.List(Code(), required=True)
    receive = fields.List(Code(), required=True)


class ContactPointInput(Schema):
    class Meta:
        unknown = RAISE

    agency = AgencyId(required=True)
    function = fields.String(
        required=True,
        validate=validate.Length(min=2, max=100),
        metadata={"description": "a function (e.g. 'casusregisseur'), never a person's own number"},
    )


class CaseStatusSchema(Schema):
    """The case a command was about, and its status now."""

    case_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"example": "open"})


class RegisterCaseSchema(CommandSchema):
    """Registers a case at a consultation table."""

    command_name = "register_case"
    service = "case_registration"
    reply_schema = CaseStatusSchema

    case_id = fields.UUID(load_default=None, metadata={"description": "client-chosen id; repeat-safe"})
    table = TableId(required=True, metadata={"description": "consultation table id"})
    purpose = Code(required=True)
    description = fields.String(load_default=None, validate=validate.Length(max=4000))
    subjects = fields.List(fields.Nested(SubjectInput), required=True, validate=validate.Length(min=1))
    participants = fields.List(
        fields.Nested(ParticipantInput), required=True, validate=validate.Length(min=1)
    )
    agreement = fields.List(
        fields.Nested(AgreementInput),
        load_default=None,
        metadata={"description": "default: the table's standard agreement"},
    )
    record_holder = AgencyId(required=True)
    retention_class = fields.String(load_default=None, metadata={"description": "default: the table's"})
    contact_point = fields.Nested(ContactPointInput, required=True)
    participation = fields.String(
        required=True, validate=validate.OneOf(["attends", "represented", "informed_only"])
    )
    informed_beforehand = fields.Boolean(required=True)


class CloseCaseSchema(CommandSchema):
    """Closes a case with an outcome code (the outcome is kept without personal data)."""

    command_name = "close_case"
    service = "case_registration"
    reply_schema = CaseStatusSchema

    case_id = fields.UUID(required=True)
    outcome = Code(required=True, metadata={"example": "help_arranged"})


class ActivateCaseSchema(CommandSchema):
    """Starts the table's work on a registered case: only then may data be shared in it."""

    command_name = "activate_case"
    service = "case_registration"
    reply_schema = CaseStatusSchema

    case_id = fields.UUID(required=True)


class AgreementLineInput(Schema):
    class Meta:
        unknown = RAISE

    bring = fields.List(Code(), required=True)
    receive = fields.List(Code(), required=True)


REASON = validate.Length(min=1, max=2000)


class AddParticipantSchema(CommandSchema):
    """Adds an agency to a case, with its role, its own legal ground and what it may bring and
    receive (default: the table's standard line for it)."""

    command_name = "add_participant"
    service = "case_registration"
    reply_schema = CaseStatusSchema

    case_id = fields.UUID(required=True)
    participant = fields.Nested(ParticipantInput, required=True)
    agreement = fields.Nested(AgreementLineInput, load_default=None)
    reason = fields.String(required=True, validate=REASON, metadata={"description": "sealed at once"})


class RemoveParticipantSchema(CommandSchema):
    """Removes an agency from a case; it can no longer share or receive in it."""

    command_name = "remove_participant"
    service = "case_registration"
    reply_schema = CaseStatusSchema

    case_id = fields.UUID(required=True)
    participant = AgencyId(required=True, metadata={"description": "the agency that leaves"})
    reason = fields.String(required=True, validate=REASON, metadata={"description": "sealed at once"})
