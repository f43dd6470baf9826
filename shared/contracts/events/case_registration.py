"""Events published by case_registration."""

from __future__ import annotations

from marshmallow import fields

from shared.contracts.events.base import (
    AgreementRef,
    ContactPointRef,
    EventSchema,
    ParticipantRef,
    SubjectRef,
)
from shared.contracts.fields import AgencyId, Code, Pseudonym, SealedValue, TableId


class CaseRegisteredSchema(EventSchema):
    event_name, source, aggregate_id_field = "CaseRegistered", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    table = TableId(required=True)
    purpose = Code(required=True)
    description = SealedValue()
    subjects = fields.List(fields.Nested(SubjectRef), required=True)
    participants = fields.List(fields.Nested(ParticipantRef), required=True)
    agreement = fields.List(fields.Nested(AgreementRef), required=True)
    record_holder = AgencyId(required=True)
    retention_class = fields.String(required=True)
    contact_point = fields.Nested(ContactPointRef, required=True)
    participation = fields.String(required=True)
    informed_beforehand = fields.Boolean(required=True)
    registered_by = AgencyId(required=True)
    catalogue_version = fields.String(required=True)


class CaseClosedSchema(EventSchema):
    event_name, source, aggregate_id_field = "CaseClosed", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    outcome = Code(required=True)
    closed_by = AgencyId(required=True)


class CaseActivatedSchema(EventSchema):
    """The case's registration is complete and the table starts work: from now on shares may be
    decided in it (a share on a case that is not active is refused)."""

    event_name, source, aggregate_id_field = "CaseActivated", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    activated_by = AgencyId(required=True)


class CaseStoppedSchema(EventSchema):
    """An objection stopped the case for one subject: nothing more is shared about them unless a
    safety override covers it. ``status`` is ``stopped`` once every subject objected."""

    event_name, source, aggregate_id_field = "CaseStopped", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    objection_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"description": "the case's status after it"})


class CaseResumedSchema(EventSchema):
    """An objection was withdrawn: the case runs again for that subject."""

    event_name, source, aggregate_id_field = "CaseResumed", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    objection_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"description": "the case's status after it"})


class ParticipantAddedSchema(EventSchema):
    event_name, source, aggregate_id_field = "ParticipantAdded", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    participant = fields.Nested(ParticipantRef, required=True)
    agreement = fields.Nested(AgreementRef, required=True)
    reason = SealedValue(metadata={"description": "why the agency joins (case key)"})
    added_by = AgencyId(required=True)
    catalogue_version = fields.String(required=True)


class ParticipantRemovedSchema(EventSchema):
    event_name, source, aggregate_id_field = "ParticipantRemoved", "case_registration", "case_id"

    case_id = fields.UUID(required=True)
    agency = AgencyId(required=True)
    reason = SealedValue(metadata={"description": "why the agency leaves (case key)"})
    removed_by = AgencyId(required=True)
