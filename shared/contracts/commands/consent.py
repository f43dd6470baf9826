"""Commands consent handles."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from shared.contracts.commands.base import CommandSchema
from shared.contracts.fields import AgencyId, Bsn, Code


class ConsentRecordedSchema(Schema):
    """The subject's consent record in the case, and how many consents it now holds."""

    record_id = fields.UUID(required=True)
    consents = fields.Integer(required=True)


class GiveConsentSchema(CommandSchema):
    """Records a data subject's specific consent."""

    command_name = "give_consent"
    service = "consent"
    reply_schema = ConsentRecordedSchema

    case_id = fields.UUID(required=True)
    subject_bsn = Bsn(required=True)
    purpose = Code(required=True)
    categories = fields.List(Code(), required=True, validate=validate.Length(min=1))
    recipients = fields.List(AgencyId(), required=True, validate=validate.Length(min=1))
    valid_until = fields.Date(required=True)
    notice_version = fields.String(required=True, validate=validate.Length(min=1, max=50))
    notice_text = fields.String(required=True, validate=validate.Length(min=1, max=8000))
    given_how = fields.String(required=True, validate=validate.OneOf(["in_person", "written", "digital"]))


class WithdrawConsentSchema(CommandSchema):
    """Records that the subject withdrew every consent they gave in the case."""

    command_name = "withdraw_consent"
    service = "consent"
    reply_schema = ConsentRecordedSchema

    case_id = fields.UUID(required=True)
    subject_bsn = Bsn(required=True)


class ObjectionSchema(Schema):
    """The subject's record in the case and the objection now in force (none once withdrawn)."""

    record_id = fields.UUID(required=True)
    objection_id = fields.UUID(allow_none=True, required=True)


class LodgeObjectionSchema(CommandSchema):
    """Records the subject's objection: "stop discussing my case". The case stops for them and
    nothing more is shared about them, unless a safety override covers it."""

    command_name = "lodge_objection"
    service = "consent"
    reply_schema = ObjectionSchema

    case_id = fields.UUID(required=True)
    subject_bsn = Bsn(required=True)
    objection_id = fields.UUID(load_default=None, metadata={"description": "client-chosen id; repeat-safe"})
    reason = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=4000),
        metadata={"description": "the subject's own words, if they gave any; sealed at once"},
    )


class WithdrawObjectionSchema(CommandSchema):
    command_name = "withdraw_objection"
    service = "consent"
    reply_schema = ObjectionSchema

    case_id = fields.UUID(required=True)
    subject_bsn = Bsn(required=True)
    objection_id = fields.UUID(required=True)


class DeferralInput(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    review_on = fields.Date(required=True)


class SafetyOverrideStatusSchema(Schema):
    override_id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["in_force", "ended"]))


class RecordSafetyOverrideSchema(CommandSchema):
    """Records that the safety of others justifies sharing despite an objection, within a scope
    and until a date; the subjects are owed ``explanation`` (now, or when ``deferral`` ends)."""

    command_name = "record_safety_override"
    service = "consent"
    reply_schema = SafetyOverrideStatusSchema

    override_id = fields.UUID(load_default=None, metadata={"description": "client-chosen id; repeat-safe"})
    case_id = fields.UUID(required=True)
    subject_bsns = fields.List(Bsn(), required=True, validate=validate.Length(min=1))
    categories = fields.List(Code(), required=True, validate=validate.Length(min=1))
    recipients = fields.List(AgencyId(), required=True, validate=validate.Length(min=1))
    ground = Code(required=True, metadata={"description": "one of safety_override_grounds"})
    reasons = fields.String(required=True, validate=validate.Length(min=1, max=8000))
    function = fields.String(
        required=True,
        validate=validate.Length(min=2, max=100),
        metadata={"description": "the recording professional's function, never their name"},
    )
    ends_on = fields.Date(required=True)
    explanation = fields.String(
        required=True,
        validate=validate.Length(min=1, max=8000),
        metadata={"description": "what the subjects will be told of the override and why"},
    )
    deferral = fields.Nested(
        DeferralInput,
        load_default=None,
        metadata={"description": "hold the subjects' notifications: telling now endangers someone"},
    )


class EndSafetyOverrideSchema(CommandSchema):
    command_name = "end_safety_override"
    service = "consent"
    reply_schema = SafetyOverrideStatusSchema

    override_id = fields.UUID(required=True)
    reason_code = Code(required=True, metadata={"description": "one of safety_override_end_reasons"})
