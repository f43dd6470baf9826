"""Domain events the platform publishes on ``keten.events`` (routing key ``<source>.<event>``).

Tolerant readers: unknown fields are ignored, so a new optional field does not break a
consumer. Personal values travel sealed (``SealedValue``); subjects by pseudonym.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields

from shared.contracts.fields import AgencyId, Code, Pseudonym, SealedValue, TableId


class EventSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    #: The event's name: the domain event class name, and the second part of its routing key.
    event_name = ""
    #: The service that publishes it.
    source = ""
    #: The field that carries the id of the aggregate the event belongs to.
    aggregate_id_field = ""
    version = 1


class SubjectRef(Schema):
    class Meta:
        unknown = EXCLUDE

    pseudonym = Pseudonym(required=True)
    role = Code(required=True)
    minor = fields.Boolean(required=True)
    details = SealedValue(metadata={"description": "name, contact details, channel, language"})
    represented_by = Pseudonym(allow_none=True, load_default=None)


class ParticipantRef(Schema):
    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    role = Code(required=True)
    legal_ground = Code(required=True)


class AgreementRef(Schema):
    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    bring = fields.List(Code(), required=True)
    receive = fields.List(Code(), required=True)


class ContactPointRef(Schema):
    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    function = fields.String(required=True)


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
    visible_to_subject = fields.Boolean(required=True)
    catalogue_version = fields.String(required=True)
    correlation_id = fields.String(allow_none=True, load_default=None)


class NotificationSentSchema(EventSchema):
    event_name, source, aggregate_id_field = "NotificationSent", "notification", "notification_id"

    notification_id = fields.UUID(required=True)
    share_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    channel = fields.String(required=True)
    correlation_id = fields.String(allow_none=True, load_default=None)


EVENT_SCHEMAS: dict[str, type[EventSchema]] = {
    schema.event_name: schema
    for schema in (
        CaseRegisteredSchema,
        CaseClosedSchema,
        ConsentGivenSchema,
        DataSharedSchema,
        ShareRefusedSchema,
        NotificationSentSchema,
    )
}
