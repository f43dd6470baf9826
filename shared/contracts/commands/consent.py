"""Commands consent handles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from marshmallow import RAISE, Schema, fields, validate

from shared.contracts.commands.base import Command, CommandSchema
from shared.contracts.fields import AgencyId, Bsn, Code, Identifier
from shared.contracts.typed import TypedSchema


class ConsentRecordedSchema(Schema):
    """The subject's consent record in the case, and how many consents it now holds."""

    record_id = fields.UUID(required=True)
    consents = fields.Integer(required=True)


@dataclass(frozen=True, kw_only=True)
class GiveConsent(Command):
    case_id: UUID
    subject: str
    purpose: str
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    valid_until: date
    notice_version: str
    notice_text: str
    given_how: str


class GiveConsentSchema(CommandSchema[GiveConsent]):
    """Records a data subject's specific consent."""

    command_name = "give_consent"
    service = "consent"
    reply_schema = ConsentRecordedSchema

    case_id = fields.UUID(required=True)
    subject = Bsn(required=True, data_key="subject_bsn")
    purpose = Code(required=True)
    categories = fields.List(Code(), required=True, validate=validate.Length(min=1))
    recipients = fields.List(AgencyId(), required=True, validate=validate.Length(min=1))
    valid_until = fields.Date(required=True)
    notice_version = Identifier(
        required=True,
        metadata={
            "description": "the version of the notice shown, kept readable: letters, digits"
            " and . / - _ with at least one digit (the text itself goes in notice_text, sealed)"
        },
    )
    notice_text = fields.String(required=True, validate=validate.Length(min=1, max=8000))
    given_how = fields.String(required=True, validate=validate.OneOf(["in_person", "written", "digital"]))


@dataclass(frozen=True, kw_only=True)
class WithdrawConsent(Command):
    case_id: UUID
    subject: str


class WithdrawConsentSchema(CommandSchema[WithdrawConsent]):
    """Records that the subject withdrew every consent they gave in the case."""

    command_name = "withdraw_consent"
    service = "consent"
    reply_schema = ConsentRecordedSchema

    case_id = fields.UUID(required=True)
    subject = Bsn(required=True, data_key="subject_bsn")


class ObjectionSchema(Schema):
    """The subject's record in the case and the objection now in force (none once withdrawn)."""

    record_id = fields.UUID(required=True)
    objection_id = fields.UUID(allow_none=True, required=True)


@dataclass(frozen=True, kw_only=True)
class LodgeObjection(Command):
    case_id: UUID
    subject: str
    objection_id: UUID | None
    reason: str | None


class LodgeObjectionSchema(CommandSchema[LodgeObjection]):
    """Records the subject's objection: "stop discussing my case". The case stops for them and
    nothing more is shared about them, unless a safety override covers it."""

    command_name = "lodge_objection"
    service = "consent"
    reply_schema = ObjectionSchema

    case_id = fields.UUID(required=True)
    subject = Bsn(required=True, data_key="subject_bsn")
    objection_id = fields.UUID(load_default=None, metadata={"description": "client-chosen id; repeat-safe"})
    reason = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=4000),
        metadata={"description": "the subject's own words, if they gave any; sealed at once"},
    )


@dataclass(frozen=True, kw_only=True)
class WithdrawObjection(Command):
    case_id: UUID
    subject: str
    objection_id: UUID


class WithdrawObjectionSchema(CommandSchema[WithdrawObjection]):
    command_name = "withdraw_objection"
    service = "consent"
    reply_schema = ObjectionSchema

    case_id = fields.UUID(required=True)
    subject = Bsn(required=True, data_key="subject_bsn")
    objection_id = fields.UUID(required=True)


@dataclass(frozen=True, kw_only=True)
class DeferralInput:
    reason: str
    review_on: date


class DeferralInputSchema(TypedSchema[DeferralInput]):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    review_on = fields.Date(required=True)


class SafetyOverrideStatusSchema(Schema):
    override_id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["in_force", "ended"]))


@dataclass(frozen=True, kw_only=True)
class RecordSafetyOverride(Command):
    override_id: UUID | None
    case_id: UUID
    subjects: tuple[str, ...]
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    ground: str
    reasons: str
    function: str
    ends_on: date
    explanation: str
    deferral: DeferralInput | None


class RecordSafetyOverrideSchema(CommandSchema[RecordSafetyOverride]):
    """Records that the safety of others justifies sharing despite an objection, within a scope
    and until a date; the subjects are owed ``explanation`` (now, or when ``deferral`` ends)."""

    command_name = "record_safety_override"
    service = "consent"
    reply_schema = SafetyOverrideStatusSchema

    override_id = fields.UUID(load_default=None, metadata={"description": "client-chosen id; repeat-safe"})
    case_id = fields.UUID(required=True)
    subjects = fields.List(Bsn(), required=True, validate=validate.Length(min=1), data_key="subject_bsns")
    categories = fields.List(Code(), required=True, validate=validate.Length(min=1))
    recipients = fields.List(AgencyId(), required=True, validate=validate.Length(min=1))
    ground = Code(required=True, metadata={"description": "one of safety_override_grounds"})
    reasons = fields.String(required=True, validate=validate.Length(min=1, max=8000))
    function = fields.String(
        required=True,
        validate=validate.Length(min=2, max=100),
        metadata={
            "description": "the recording professional's function, never their name; sealed at once"
            " under the case's key"
        },
    )
    ends_on = fields.Date(required=True)
    explanation = fields.String(
        required=True,
        validate=validate.Length(min=1, max=8000),
        metadata={"description": "what the subjects will be told of the override and why"},
    )
    deferral = fields.Nested(
        DeferralInputSchema,
        load_default=None,
        metadata={"description": "hold the subjects' notifications: telling now endangers someone"},
    )


@dataclass(frozen=True, kw_only=True)
class EndSafetyOverride(Command):
    override_id: UUID
    reason_code: str


class EndSafetyOverrideSchema(CommandSchema[EndSafetyOverride]):
    command_name = "end_safety_override"
    service = "consent"
    reply_schema = SafetyOverrideStatusSchema

    override_id = fields.UUID(required=True)
    reason_code = Code(required=True, metadata={"description": "one of safety_override_end_reasons"})
