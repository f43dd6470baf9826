"""Events published by consent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from marshmallow import EXCLUDE, fields, validate

from shared.contracts.events.base import EventSchema
from shared.contracts.fields import AgencyId, Code, Pseudonym, SealedText, SealedValue
from shared.contracts.typed import TypedSchema
from shared.sealed import Sealed


@dataclass(frozen=True, kw_only=True)
class ConsentGiven:
    record_id: UUID
    case_id: UUID
    subject: str
    purpose: str
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    valid_until: date
    notice_version: str
    notice: Sealed | None = None
    given_how: str
    recorded_by: str


class ConsentGivenSchema(EventSchema[ConsentGiven]):
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


@dataclass(frozen=True, kw_only=True)
class ConsentWithdrawn:
    record_id: UUID
    case_id: UUID
    subject: str
    recorded_by: str


class ConsentWithdrawnSchema(EventSchema[ConsentWithdrawn]):
    """The subject withdrew every consent they gave in the case; shares that relied on it stop."""

    event_name, source, aggregate_id_field = "ConsentWithdrawn", "consent", "record_id"

    record_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    recorded_by = AgencyId(required=True)


@dataclass(frozen=True, kw_only=True)
class ObjectionLodged:
    record_id: UUID
    objection_id: UUID
    case_id: UUID
    subject: str
    recorded_by: str
    reason: Sealed | None = None


class ObjectionLodgedSchema(EventSchema[ObjectionLodged]):
    """The subject said "stop discussing my case": case_registration stops the case for them,
    data_sharing refuses further shares about them unless a safety override covers it."""

    event_name, source, aggregate_id_field = "ObjectionLodged", "consent", "record_id"

    record_id = fields.UUID(required=True)
    objection_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    recorded_by = AgencyId(required=True)
    reason = SealedValue(metadata={"description": "the subject's own words, if given (subject key)"})


@dataclass(frozen=True, kw_only=True)
class ObjectionWithdrawn:
    record_id: UUID
    objection_id: UUID
    case_id: UUID
    subject: str
    recorded_by: str


class ObjectionWithdrawnSchema(EventSchema[ObjectionWithdrawn]):
    event_name, source, aggregate_id_field = "ObjectionWithdrawn", "consent", "record_id"

    record_id = fields.UUID(required=True)
    objection_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    recorded_by = AgencyId(required=True)


@dataclass(frozen=True, kw_only=True)
class ObjectionToAgencyLodged:
    record_id: UUID
    objection_id: UUID
    case_id: UUID
    subject: str
    agency: str
    recorded_by: str


class ObjectionToAgencyLodgedSchema(EventSchema[ObjectionToAgencyLodged]):
    """The subject objected to one agency's part in the case: data_sharing refuses shares about
    them from and to ``agency`` (``objection_to_agency``) unless a safety override covers them;
    the other agencies go on. In force until ``ObjectionToAgencyEnded`` of its id."""

    event_name, source, aggregate_id_field = "ObjectionToAgencyLodged", "consent", "record_id"

    record_id = fields.UUID(required=True)
    objection_id = fields.UUID(required=True, metadata={"description": "the citizen's request id"})
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    agency = AgencyId(required=True, metadata={"description": "the agency whose part is objected to"})
    recorded_by = AgencyId(required=True, metadata={"example": "citizen"})


@dataclass(frozen=True, kw_only=True)
class ObjectionToAgencyEnded:
    record_id: UUID
    objection_id: UUID
    case_id: UUID
    subject: str
    agency: str
    ended_by: str
    why: str


class ObjectionToAgencyEndedSchema(EventSchema[ObjectionToAgencyEnded]):
    """An objection to one agency's part ended: the subject withdrew it (``withdrawn``) or the
    agency refused it in its answer, on the ground its reason states (``refused``)."""

    event_name, source, aggregate_id_field = "ObjectionToAgencyEnded", "consent", "record_id"

    record_id = fields.UUID(required=True)
    objection_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    agency = AgencyId(required=True)
    ended_by = AgencyId(
        required=True, metadata={"description": "citizen, legal-representative or the agency"}
    )
    why = fields.String(required=True, validate=validate.OneOf(["withdrawn", "refused"]))


@dataclass(frozen=True, kw_only=True)
class RecordedBy:
    agency: str
    #: Plain text only in events stored before the function was sealed.
    function: Sealed | str | None


class RecordedBySchema(TypedSchema[RecordedBy]):
    """Who took a decision: an agency and a function, never a person's name."""

    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    function = SealedText(
        required=True,
        metadata={
            "description": "the professional's function, sealed (case key); plain text in events"
            " stored before it was"
        },
    )


@dataclass(frozen=True, kw_only=True)
class Deferral:
    reason: Sealed | None = None
    review_on: date


class DeferralSchema(TypedSchema[Deferral]):
    """Telling the subject now would endanger someone: their notifications of shares under the
    override are held, on record, until ``review_on`` (the notification service keeps it)."""

    class Meta:
        unknown = EXCLUDE

    reason = SealedValue(metadata={"description": "why telling now endangers someone (case key)"})
    review_on = fields.Date(required=True)


@dataclass(frozen=True, kw_only=True)
class SafetyOverrideRecorded:
    override_id: UUID
    case_id: UUID
    subjects: tuple[str, ...]
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    ground: str
    reasons: Sealed | None = None
    recorded_by: RecordedBy
    ends_on: date
    explanation: Sealed | None = None
    deferral: Deferral | None
    catalogue_version: str


class SafetyOverrideRecordedSchema(EventSchema[SafetyOverrideRecorded]):
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


@dataclass(frozen=True, kw_only=True)
class SafetyOverrideEnded:
    override_id: UUID
    case_id: UUID
    reason_code: str
    ended_by: str


class SafetyOverrideEndedSchema(EventSchema[SafetyOverrideEnded]):
    event_name, source, aggregate_id_field = "SafetyOverrideEnded", "consent", "override_id"

    override_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    reason_code = Code(required=True, metadata={"description": "one of safety_override_end_reasons"})
    ended_by = AgencyId(required=True)


# -- the citizen's requests ---------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CitizenRequestReceived:
    request_id: UUID
    case_id: UUID
    subject: str
    kind: str
    agency: str
    text: Sealed | None = None
    received_at: datetime
    due_on: date
    representative: str | None = None
    agency_named: bool = False


class CitizenRequestReceivedSchema(EventSchema[CitizenRequestReceived]):
    """A citizen asked something about their case (object, withdraw a consent, correction,
    erasure, restriction, access, a question) of ``agency``, which must answer by ``due_on``
    (one calendar month in Europe/Amsterdam, AVG art. 12(3))."""

    event_name, source, aggregate_id_field = "CitizenRequestReceived", "consent", "request_id"

    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    kind = Code(required=True)
    agency = AgencyId(required=True, metadata={"description": "the agency that must answer"})
    text = SealedValue(metadata={"description": "the citizen's own words (subject key)"})
    received_at = fields.AwareDateTime(required=True)
    due_on = fields.Date(required=True)
    representative = Pseudonym(
        allow_none=True,
        load_default=None,
        metadata={"description": "the minor's legal representative who submitted it for the subject"},
    )
    agency_named = fields.Boolean(
        load_default=False,
        metadata={"description": "the citizen named the agency; an objection that does is to its part only"},
    )


@dataclass(frozen=True, kw_only=True)
class CitizenRequestExtended:
    request_id: UUID
    case_id: UUID
    subject: str
    agency: str
    due_on: date
    reason: Sealed | None = None


class CitizenRequestExtendedSchema(EventSchema[CitizenRequestExtended]):
    """The agency extended the deadline once, with its reason for the citizen (subject key)."""

    event_name, source, aggregate_id_field = "CitizenRequestExtended", "consent", "request_id"

    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    agency = AgencyId(required=True)
    due_on = fields.Date(required=True, metadata={"description": "the new last day to answer"})
    reason = SealedValue(metadata={"description": "{nl, en}: why more time is needed"})


@dataclass(frozen=True, kw_only=True)
class CitizenRequestAnswered:
    request_id: UUID
    case_id: UUID
    subject: str
    agency: str
    outcome: str
    reason: Sealed | None = None
    late: bool


class CitizenRequestAnsweredSchema(EventSchema[CitizenRequestAnswered]):
    """The agency answered: granted, partly granted or refused, with its reason (subject key)."""

    event_name, source, aggregate_id_field = "CitizenRequestAnswered", "consent", "request_id"

    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    agency = AgencyId(required=True)
    outcome = Code(required=True)
    reason = SealedValue(metadata={"description": "{nl, en}: the reason for the citizen"})
    late = fields.Boolean(required=True, metadata={"description": "answered after the deadline"})


@dataclass(frozen=True, kw_only=True)
class CitizenRequestOverdue:
    request_id: UUID
    case_id: UUID
    subject: str
    agency: str
    kind: str
    due_on: date


class CitizenRequestOverdueSchema(EventSchema[CitizenRequestOverdue]):
    """The deadline passed without an answer: the citizen is told, with the complaint route."""

    event_name, source, aggregate_id_field = "CitizenRequestOverdue", "consent", "request_id"

    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    agency = AgencyId(required=True)
    kind = Code(required=True)
    due_on = fields.Date(required=True)


@dataclass(frozen=True, kw_only=True)
class CitizenRequestWithdrawn:
    request_id: UUID
    case_id: UUID
    subject: str
    representative: str | None = None


class CitizenRequestWithdrawnSchema(EventSchema[CitizenRequestWithdrawn]):
    """The citizen took their request back."""

    event_name, source, aggregate_id_field = "CitizenRequestWithdrawn", "consent", "request_id"

    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    representative = Pseudonym(
        allow_none=True,
        load_default=None,
        metadata={"description": "the minor's legal representative who withdrew it for the subject"},
    )
