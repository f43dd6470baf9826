"""Commands agencies send to the platform (over RPC, HTTP or ``keten.commands``).

Strict: unknown fields are an error (a typo must not silently drop data). Every command names
its agency and carries the schema version it was written against. Personal data arrives here in
plaintext and is sealed or pseudonymised by the receiving service before anything is stored.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.contracts.fields import AgencyId, Bsn, Code, TableId
from shared.errors import InvalidRequest

COMMAND_VERSION = 1


class CommandSchema(Schema):
    class Meta:
        unknown = RAISE

    #: The command this schema describes, as it appears in routing keys and the AsyncAPI document.
    command_name = ""
    #: The service that handles it.
    service = ""

    schema_version = fields.Integer(
        required=True,
        validate=validate.Equal(COMMAND_VERSION, error="unknown schema_version; this platform speaks 1"),
        metadata={"description": "version of the message schema"},
    )
    agency = AgencyId(required=True, metadata={"description": "the sending agency"})


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


class RegisterCaseSchema(CommandSchema):
    """Registers a case at a consultation table."""

    command_name = "register_case"
    service = "case_registration"

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

    case_id = fields.UUID(required=True)
    outcome = Code(required=True, metadata={"example": "help_arranged"})


class GiveConsentSchema(CommandSchema):
    """Records a data subject's specific consent."""

    command_name = "give_consent"
    service = "consent"

    case_id = fields.UUID(required=True)
    subject_bsn = Bsn(required=True)
    purpose = Code(required=True)
    categories = fields.List(Code(), required=True, validate=validate.Length(min=1))
    recipients = fields.List(AgencyId(), required=True, validate=validate.Length(min=1))
    valid_until = fields.Date(required=True)
    notice_version = fields.String(required=True, validate=validate.Length(min=1, max=50))
    notice_text = fields.String(required=True, validate=validate.Length(min=1, max=8000))
    given_how = fields.String(required=True, validate=validate.OneOf(["in_person", "written", "digital"]))


class RequestShareSchema(CommandSchema):
    """Asks to share data about one subject of a case with one or more agencies (push), or
    asks another agency for data it holds (pull: ``direction=pull``, ``agency`` receives)."""

    command_name = "request_share"
    service = "data_sharing"

    request_id = fields.UUID(required=True, metadata={"description": "repeat-safe id of this request"})
    case_id = fields.UUID(required=True)
    subject_bsn = Bsn(required=True)
    from_agency = AgencyId(load_default=None, metadata={"description": "pull only: who holds the data"})
    to_agencies = fields.List(AgencyId(), required=True, validate=validate.Length(min=1))
    categories = fields.List(Code(), required=True, validate=validate.Length(min=1))
    purpose = Code(required=True)
    content = fields.String(load_default=None, validate=validate.Length(max=20000))
    content_reference = fields.String(load_default=None, validate=validate.Length(max=500))
    form = fields.String(load_default="written", validate=validate.OneOf(["written", "oral"]))
    meeting_id = fields.String(load_default=None, validate=validate.Length(max=100))
    special_grounds = fields.Dict(
        keys=Code(),
        values=Code(),
        load_default=dict,
        metadata={"description": "per special or criminal category, the ground relied on"},
    )
    direction = fields.String(load_default="push", validate=validate.OneOf(["push", "pull"]))


COMMAND_SCHEMAS: dict[str, type[CommandSchema]] = {
    schema.command_name: schema
    for schema in (RegisterCaseSchema, CloseCaseSchema, GiveConsentSchema, RequestShareSchema)
}


def load_command(schema_cls: type[CommandSchema], payload: Any) -> dict[str, Any]:
    """Validates a command; raises ``InvalidRequest`` naming the first field at fault."""
    if not isinstance(payload, dict):
        raise InvalidRequest("invalid_message", "a command is a JSON object")
    try:
        return schema_cls().load(payload)
    except ValidationError as exc:
        raise InvalidRequest.from_validation_error(exc) from None
