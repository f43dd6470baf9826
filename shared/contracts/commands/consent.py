"""Commands consent handles."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

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
