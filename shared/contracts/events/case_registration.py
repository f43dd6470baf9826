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
from shared.contracts.fields import AgencyId, Code, SealedValue, TableId


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
