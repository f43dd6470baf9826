"""Events published by case_registration."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from marshmallow import fields

from shared.contracts.events.base import (
    AgreementRef,
    AgreementRefSchema,
    ContactPointRef,
    ContactPointRefSchema,
    EventSchema,
    ParticipantRef,
    ParticipantRefSchema,
    SubjectRef,
    SubjectRefSchema,
)
from shared.contracts.fields import AgencyId, Code, Pseudonym, SealedValue, TableId
from shared.sealed import Sealed


@dataclass(frozen=True, kw_only=True)
class CaseRegistered:
    case_id: UUID
    table: str
    purpose: str
    description: Sealed | None = None
    subjects: tuple[SubjectRef, ...]
    participants: tuple[ParticipantRef, ...]
    agreement: tuple[AgreementRef, ...]
    record_holder: str
    retention_class: str
    contact_point: ContactPointRef
    participation: str
    informed_beforehand: bool
    registered_by: str
    catalogue_version: str


class CaseRegisteredSchema(EventSchema[CaseRegistered]):
    event_name, source, aggregate_id_field = "CaseRegistered", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    table = TableId(required=True)
    purpose = Code(required=True)
    description = SealedValue()
    subjects = fields.List(fields.Nested(SubjectRefSchema), required=True)
    participants = fields.List(fields.Nested(ParticipantRefSchema), required=True)
    agreement = fields.List(fields.Nested(AgreementRefSchema), required=True)
    record_holder = AgencyId(required=True)
    retention_class = fields.String(required=True)
    contact_point = fields.Nested(ContactPointRefSchema, required=True)
    participation = fields.String(required=True)
    informed_beforehand = fields.Boolean(required=True)
    registered_by = AgencyId(required=True)
    catalogue_version = fields.String(required=True)


@dataclass(frozen=True, kw_only=True)
class CaseClosed:
    case_id: UUID
    outcome: str
    closed_by: str


class CaseClosedSchema(EventSchema[CaseClosed]):
    event_name, source, aggregate_id_field = "CaseClosed", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    outcome = Code(required=True)
    closed_by = AgencyId(required=True)


@dataclass(frozen=True, kw_only=True)
class CaseActivated:
    case_id: UUID
    activated_by: str


class CaseActivatedSchema(EventSchema[CaseActivated]):
    """The case's registration is complete and the table starts work: from now on shares may be
    decided in it (a share on a case that is not active is refused)."""

    event_name, source, aggregate_id_field = "CaseActivated", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    activated_by = AgencyId(required=True)


@dataclass(frozen=True, kw_only=True)
class CaseStopped:
    case_id: UUID
    subject: str
    objection_id: UUID
    status: str


class CaseStoppedSchema(EventSchema[CaseStopped]):
    """An objection stopped the case for one subject: nothing more is shared about them unless a
    safety override covers it. ``status`` is ``stopped`` once every subject objected."""

    event_name, source, aggregate_id_field = "CaseStopped", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    objection_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"description": "the case's status after it"})


@dataclass(frozen=True, kw_only=True)
class CaseResumed:
    case_id: UUID
    subject: str
    objection_id: UUID
    status: str


class CaseResumedSchema(EventSchema[CaseResumed]):
    """An objection was withdrawn: the case runs again for that subject."""

    event_name, source, aggregate_id_field = "CaseResumed", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    objection_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"description": "the case's status after it"})


@dataclass(frozen=True, kw_only=True)
class ParticipantAdded:
    case_id: UUID
    participant: ParticipantRef
    agreement: AgreementRef
    reason: Sealed | None = None
    added_by: str
    catalogue_version: str


class ParticipantAddedSchema(EventSchema[ParticipantAdded]):
    event_name, source, aggregate_id_field = "ParticipantAdded", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    participant = fields.Nested(ParticipantRefSchema, required=True)
    agreement = fields.Nested(AgreementRefSchema, required=True)
    reason = SealedValue(metadata={"description": "why the agency joins (case key)"})
    added_by = AgencyId(required=True)
    catalogue_version = fields.String(required=True)


@dataclass(frozen=True, kw_only=True)
class ParticipantRemoved:
    case_id: UUID
    agency: str
    reason: Sealed | None = None
    removed_by: str


class ParticipantRemovedSchema(EventSchema[ParticipantRemoved]):
    event_name, source, aggregate_id_field = "ParticipantRemoved", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    agency = AgencyId(required=True)
    reason = SealedValue(metadata={"description": "why the agency leaves (case key)"})
    removed_by = AgencyId(required=True)
