"""Events published by retention. None carries personal data: ids, codes, dates and pseudonyms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from marshmallow import fields, validate

from shared.contracts.events.base import EventSchema
from shared.contracts.fields import AgencyId, Code, Pseudonym


@dataclass(frozen=True, kw_only=True)
class RecordsPurged:
    retention_id: UUID
    case_id: UUID
    scope: str
    subject: str | None
    record_kind: str
    record_ids: tuple[str, ...]
    recipients: tuple[str, ...]
    retention_class: str
    rule_version: int
    catalogue_version: str
    due_at: datetime | None
    reason: str
    complete: bool


class RecordsPurgedSchema(EventSchema[RecordsPurged]):
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


@dataclass(frozen=True, kw_only=True)
class LegalHoldPlaced:
    retention_id: UUID
    case_id: UUID
    hold_id: UUID
    agency: str
    reason_code: str
    reference: str | None


class LegalHoldPlacedSchema(EventSchema[LegalHoldPlaced]):
    event_name, source, aggregate_id_field = "LegalHoldPlaced", "retention", "retention_id"

    retention_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    hold_id = fields.UUID(required=True)
    agency = AgencyId(required=True)
    reason_code = Code(required=True)
    reference = fields.String(allow_none=True, load_default=None)


@dataclass(frozen=True, kw_only=True)
class LegalHoldLifted:
    retention_id: UUID
    case_id: UUID
    hold_id: UUID
    agency: str


class LegalHoldLiftedSchema(EventSchema[LegalHoldLifted]):
    event_name, source, aggregate_id_field = "LegalHoldLifted", "retention", "retention_id"

    retention_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    hold_id = fields.UUID(required=True)
    agency = AgencyId(required=True)


@dataclass(frozen=True, kw_only=True)
class PurgeSuspended:
    retention_id: UUID
    case_id: UUID
    record_kind: str
    subject: str | None
    record_ids: tuple[str, ...]
    due_at: datetime | None
    hold_ids: tuple[str, ...]
    reason_codes: tuple[str, ...]


class PurgeSuspendedSchema(EventSchema[PurgeSuspended]):
    event_name, source, aggregate_id_field = "PurgeSuspended", "retention", "retention_id"

    retention_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    record_kind = Code(required=True)
    subject = Pseudonym(allow_none=True, load_default=None)
    record_ids = fields.List(fields.String(), required=True)
    due_at = fields.AwareDateTime(allow_none=True, load_default=None)
    hold_ids = fields.List(fields.String(), required=True)
    reason_codes = fields.List(Code(), required=True)


@dataclass(frozen=True, kw_only=True)
class ErasureGranted:
    retention_id: UUID
    case_id: UUID
    subject: str


class ErasureGrantedSchema(EventSchema[ErasureGranted]):
    event_name, source, aggregate_id_field = "ErasureGranted", "retention", "retention_id"

    retention_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)


@dataclass(frozen=True, kw_only=True)
class ErasureRefused:
    retention_id: UUID
    case_id: UUID
    subject: str
    reason_code: str


class ErasureRefusedSchema(EventSchema[ErasureRefused]):
    event_name, source, aggregate_id_field = "ErasureRefused", "retention", "retention_id"

    retention_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    reason_code = Code(required=True, metadata={"description": "see erasure_refusals in the catalogue"})
