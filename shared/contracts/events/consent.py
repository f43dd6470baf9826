"""Events published by consent."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields

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


class ConsentWithdrawnSchema(EventSchema):
    """The subject withdrew every consent they gave in the case; shares that relied on it stop."""

    event_name, source, aggregate_id_field = "ConsentWithdrawn", "consent", "record_id"

    record_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    recorded_by = AgencyId(required=True)


class ObjectionLodgedSchema(EventSchema):
    """The subject said "stop discussing my case": case_registration stops the case for them,
    data_sharing refuses further shares about them unless a safety override covers it."""

    event_name, source, aggregate_id_field = "ObjectionLodged", "consent", "record_id"

    record_id = fields.UUID(required=True)
    objection_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    recorded_by = AgencyId(required=True)
    reason = SealedValue(metadata={"description": "the subject's own words, if given (subject key)"})


class ObjectionWithdrawnSchema(EventSchema):
    event_name, source, aggregate_id_field = "ObjectionWithdrawn", "consent", "record_id"

    record_id = fields.UUID(required=True)
    objection_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    recorded_by = AgencyId(required=True)


class RecordedBySchema(Schema):
    """Who took a decision: an agency and a function, never a person's name."""

    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    function = fields.String(required=True)


class DeferralSchema(Schema):
    """Telling the subject now would endanger someone: their notifications of shares under the
    override are held, on record, until ``review_on`` (the notification service keeps it)."""

    class Meta:
        unknown = EXCLUDE

    reason = SealedValue(metadata={"description": "why telling now endangers someone (case key)"})
    review_on = fields.Date(required=True)


class SafetyOverrideRecordedSchema(EventSchema):
    """A professional recorded that the safety of others (a child, a victim of domestic
    violence) justifies sharing despite an objection, within this scope and until ``ends_on``.
    The subjects are owed ``explanation``: now, or when the deferral ends."""

    event_name, source, aggregate_id_field = "SafetyOverrideRecorded", "consent", "override_id"

    override_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subjects = fields.List(Pseudonym(), required=True)
    categories = fields.List(Code(), required=True)
    recipients = fields.List(AgencyId(), required=True)
    ground = Code(required=True, metadata={"description": "one of safety_override_grounds"})
    reasons = SealedValue(metadata={"description": "the professional's reasons (case key)"})
    recorded_by = fields.Nested(RecordedBySchema, required=True)
    ends_on = fields.Date(required=True)
    explanation = SealedValue(metadata={"description": "the explanation owed to the subjects (case key)"})
    deferral = fields.Nested(DeferralSchema, allow_none=True, load_default=None)
    catalogue_version = fields.String(required=True)


class SafetyOverrideEndedSchema(EventSchema):
    event_name, source, aggregate_id_field = "SafetyOverrideEnded", "consent", "override_id"

    override_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    reason_code = Code(required=True, metadata={"description": "one of safety_override_end_reasons"})
    ended_by = AgencyId(required=True)
