"""Events published by consent."""

from __future__ import annotations

from marshmallow import fields

from shared.contracts.events.base import EventSchema
from shared.contracts.fields import AgencyId, Code, Pseudonym, SealedValue


class ConsentGivenSchema(EventSchema):
    event_name, source, aggregate_id_field = "ConsentGiven", "consent", "record_id"

    record_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    purpose = Code(required=True)
    categories = fields.List(Code(), required=True)
    recipients = fields.List(AgencyId(), required=True)
    valid_until = fields.Date(required=True)
    notice_version = fields.String(required=True)
    notice = SealedValue(metadata={"description": "the text the subject was shown"})
    given_how = fields.String(required=True)
    recorded_by = AgencyId(required=True)
