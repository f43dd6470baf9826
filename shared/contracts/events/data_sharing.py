"""Events published by data_sharing."""

from __future__ import annotations

from marshmallow import fields

from shared.contracts.events.base import ContactPointRef, EventSchema
from shared.contracts.fields import AgencyId, Code, Pseudonym, SealedValue


class DataSharedSchema(EventSchema):
    event_name, source, aggregate_id_field = "DataShared", "data_sharing", "share_id"

    share_id = fields.UUID(required=True)
    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    from_agency = AgencyId(required=True)
    to_agency = AgencyId(required=True)
    categories = fields.List(Code(), required=True)
    purpose = Code(required=True)
    sender_ground = Code(required=True)
    recipient_ground = Code(required=True)
    special_grounds = fields.Dict(keys=Code(), values=Code(), required=True)
    form = fields.String(required=True, metadata={"description": "written or oral"})
    meeting_id = fields.String(allow_none=True, load_default=None)
    content = SealedValue(metadata={"description": "what was shared, sealed under the subject's key"})
    direction = fields.String(required=True, metadata={"description": "push or pull"})
    override_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "the safety override under which it was shared despite an objection"},
    )
    contact_point = fields.Nested(ContactPointRef, required=True)
    catalogue_version = fields.String(required=True)
    correlation_id = fields.String(allow_none=True, load_default=None)


class ShareRefusedSchema(EventSchema):
    event_name, source, aggregate_id_field = "ShareRefused", "data_sharing", "share_id"

    share_id = fields.UUID(required=True)
    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    from_agency = AgencyId(required=True)
    to_agency = AgencyId(required=True)
    categories = fields.List(Code(), required=True)
    purpose = Code(required=True)
    reason_code = Code(required=True)
    reason = fields.String(required=True, metadata={"description": "plain-language reason"})
    visible_to_subject = fields.Boolean(
        required=True,
        metadata={"description": "shown in the subject's overview (e.g. refused under an objection)"},
    )
    direction = fields.String(load_default="push", metadata={"description": "push or pull"})
    catalogue_version = fields.String(required=True)
    correlation_id = fields.String(allow_none=True, load_default=None)
