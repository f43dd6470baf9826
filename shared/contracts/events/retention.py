"""Events published by retention. None carries personal data: ids, codes, dates and pseudonyms."""

from __future__ import annotations

from marshmallow import fields, validate

from shared.contracts.events.base import EventSchema
from shared.contracts.fields import AgencyId, Code, Pseudonym


class RecordsPurgedSchema(EventSchema):
    """The keys of one scope of a case were destroyed: every copy of its personal data reads as
    purged. Each service deletes the scope's personal rows from its read models and drops the
    keys it cached; an agency passes the erasure on to its own systems (``recipients`` names the
    agencies the purged share records went to)."""

    event_name, source, aggregate_id_field = "RecordsPurged", "retention", "retention_id"

    retention_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    scope = fields.String(required=True, validate=validate.OneOf(["case", "subject"]))
    subject = Pseudonym(allow_none=True, load_default=None, metadata={"description": "subject scope only"})
    record_kind = Code(required=True, metadata={"description": "case_records or share_records"})
    record_ids = fields.List(fields.String(), required=True)
    recipients = fields.List(AgencyId(), required=True)
    retention_class = fields.String(required=True)
    rule_version = fields.Integer(required=True)
    catalogue_version = fields.String(required=True)
    due_at = fields.AwareDateTime(allow_none=True, load_default=None)
    reason = fields.String(required=True, validate=validate.OneOf(["retention", "erasure"]))
    complete = fields.Boolean(
        required=True, metadata={"description": "nothing personal of the case is left after this purge"}
    )


class LegalHoldPlacedSchema(EventSchema):
    event_name, source, aggregate_id_field = "LegalHoldPlaced", "retention", "retention_id"

    retention_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    hold_id = fields.UUID(required=True)
    agency = AgencyId(required=True)
    reason_code = Code(required=True)
    reference = fields.String(allow_none=True, load_default=None)


class LegalHoldLiftedSchema(EventSchema):
    event_name, source, aggregate_id_field = "LegalHoldLifted", "retention", "retention_id"

    retention_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    hold_id = fields.UUID(required=True)
    agency = AgencyId(required=True)


class PurgeSuspendedSchema(EventSchema):
    event_name, source, aggregate_id_field = "PurgeSuspended", "retention", "retention_id"

    retention_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    record_kind = Code(required=True)
    subject = Pseudonym(allow_none=True, load_default=None)
    record_ids = fields.List(fields.String(), required=True)
    due_at = fields.AwareDateTime(allow_none=True, load_default=None)
    hold_ids = fields.List(fields.String(), required=True)
    reason_codes = fields.List(Code(), required=True)


class ErasureGrantedSchema(EventSchema):
    event_name, source, aggregate_id_field = "ErasureGranted", "retention", "retention_id"

    retention_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)


class ErasureRefusedSchema(EventSchema):
    event_name, source, aggregate_id_field = "ErasureRefused", "retention", "retention_id"

    retention_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    reason_code = Code(required=True, metadata={"description": "see erasure_refusals in the catalogue"})
