"""Commands consent handles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.contracts.commands.base import Command, CommandSchema
from shared.contracts.fields import AgencyId, Bsn, Code, Identifier, Pseudonym
from shared.contracts.typed import TypedSchema


class ConsentRecordedSchema(Schema):
    """The subject's consent record in the case, and how many consents it now holds."""

    record_id = fields.UUID(required=True)
    consents = fields.Integer(required=True)


@dataclass(frozen=True, kw_only=True)
class GiveConsent(Command):
    case_id: UUID
    subject: str
    purpose: str
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    valid_until: date
    notice_version: str
    notice_text: str
    given_how: str


class GiveConsentSchema(CommandSchema[GiveConsent]):
    """Records a data subject's specific consent."""

    command_name = "give_consent"
    service = "consent"
    reply_schema = ConsentRecordedSchema

    case_id = fields.UUID(required=True)
    subject = Bsn(required=True, data_key="subject_bsn")
    purpose = Code(required=True)
    categories = fields.List(Code(), required=True, validate=validate.Length(min=1))
    recipients = fields.List(AgencyId(), required=True, validate=validate.Length(min=1))
    valid_until = fields.Date(required=True)
    notice_version = Identifier(
        required=True,
        metadata={
            "description": "the version of the notice shown, kept readable: letters, digits"
            " and . / - _ with at least one digit (the text itself goes in notice_text, sealed)"
        },
    )
    notice_text = fields.String(required=True, validate=validate.Length(min=1, max=8000))
    given_how = fields.String(required=True, validate=validate.OneOf(["in_person", "written", "digital"]))


@dataclass(frozen=True, kw_only=True)
class WithdrawConsent(Command):
    case_id: UUID
    subject: str


class WithdrawConsentSchema(CommandSchema[WithdrawConsent]):
    """Records that the subject withdrew every consent they gave in the case."""

    command_name = "withdraw_consent"
    service = "consent"
    reply_schema = ConsentRecordedSchema

    case_id = fields.UUID(required=True)
    subject = Bsn(required=True, data_key="subject_bsn")


class ObjectionSchema(Schema):
    """The subject's record in the case and the objection now in force (none once withdrawn)."""

    record_id = fields.UUID(required=True)
    objection_id = fields.UUID(allow_none=True, required=True)


@dataclass(frozen=True, kw_only=True)
class LodgeObjection(Command):
    case_id: UUID
    subject: str
    objection_id: UUID | None
    reason: str | None


class LodgeObjectionSchema(CommandSchema[LodgeObjection]):
    """Records the subject's objection: "stop discussing my case". The case stops for them and
    nothing more is shared about them, unless a safety override covers it."""

    command_name = "lodge_objection"
    service = "consent"
    reply_schema = ObjectionSchema

    case_id = fields.UUID(required=True)
    subject = Bsn(required=True, data_key="subject_bsn")
    objection_id = fields.UUID(load_default=None, metadata={"description": "client-chosen id; repeat-safe"})
    reason = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=4000),
        metadata={"description": "the subject's own words, if they gave any; sealed at once"},
    )


@dataclass(frozen=True, kw_only=True)
class WithdrawObjection(Command):
    case_id: UUID
    subject: str
    objection_id: UUID


class WithdrawObjectionSchema(CommandSchema[WithdrawObjection]):
    command_name = "withdraw_objection"
    service = "consent"
    reply_schema = ObjectionSchema

    case_id = fields.UUID(required=True)
    subject = Bsn(required=True, data_key="subject_bsn")
    objection_id = fields.UUID(required=True)


@dataclass(frozen=True, kw_only=True)
class DeferralInput:
    reason: str
    review_on: date


class DeferralInputSchema(TypedSchema[DeferralInput]):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    review_on = fields.Date(required=True)


class SafetyOverrideStatusSchema(Schema):
    override_id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["in_force", "ended"]))


@dataclass(frozen=True, kw_only=True)
class RecordSafetyOverride(Command):
    override_id: UUID | None
    case_id: UUID
    subjects: tuple[str, ...]
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    ground: str
    reasons: str
    function: str
    ends_on: date
    explanation: str
    deferral: DeferralInput | None


class RecordSafetyOverrideSchema(CommandSchema[RecordSafetyOverride]):
    """Records that the safety of others justifies sharing despite an objection, within a scope
    and until a date; the subjects are owed ``explanation`` (now, or when ``deferral`` ends)."""

    command_name = "record_safety_override"
    service = "consent"
    reply_schema = SafetyOverrideStatusSchema

    override_id = fields.UUID(load_default=None, metadata={"description": "client-chosen id; repeat-safe"})
    case_id = fields.UUID(required=True)
    subjects = fields.List(Bsn(), required=True, validate=validate.Length(min=1), data_key="subject_bsns")
    categories = fields.List(Code(), required=True, validate=validate.Length(min=1))
    recipients = fields.List(AgencyId(), required=True, validate=validate.Length(min=1))
    ground = Code(required=True, metadata={"description": "one of safety_override_grounds"})
    reasons = fields.String(required=True, validate=validate.Length(min=1, max=8000))
    function = fields.String(
        required=True,
        validate=validate.Length(min=2, max=100),
        metadata={
            "description": "the recording professional's function, never their name; sealed at once"
            " under the case's key"
        },
    )
    ends_on = fields.Date(required=True)
    explanation = fields.String(
        required=True,
        validate=validate.Length(min=1, max=8000),
        metadata={"description": "what the subjects will be told of the override and why"},
    )
    deferral = fields.Nested(
        DeferralInputSchema,
        load_default=None,
        metadata={"description": "hold the subjects' notifications: telling now endangers someone"},
    )


@dataclass(frozen=True, kw_only=True)
class EndSafetyOverride(Command):
    override_id: UUID
    reason_code: str


class EndSafetyOverrideSchema(CommandSchema[EndSafetyOverride]):
    command_name = "end_safety_override"
    service = "consent"
    reply_schema = SafetyOverrideStatusSchema

    override_id = fields.UUID(required=True)
    reason_code = Code(required=True, metadata={"description": "one of safety_override_end_reasons"})


# -- the citizen's requests ---------------------------------------------------------------------
#: What a citizen can ask (``services.consent.domain.REQUEST_KINDS``).
REQUEST_KINDS = (
    "objection",
    "consent_withdrawal",
    "correction",
    "erasure",
    "restriction",
    "access",
    "question",
)
#: How an agency answers a request.
REQUEST_OUTCOMES = ("granted", "partly_granted", "refused")
#: The longest text a citizen may write into a request, in characters.
REQUEST_TEXT_MAX = 4000


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be empty")


@dataclass(frozen=True, kw_only=True)
class SubmitCitizenRequest:
    """Not an agency's command: the logged-in citizen's own request, with their pseudonym."""

    client_request_id: UUID
    case_id: UUID
    kind: str
    agency: str | None
    text: str | None
    for_subject: UUID | None
    subject: str
    language: str
    representative: str | None


class CitizenRequestBodySchema(Schema):
    """What a logged-in citizen sends to ``/api/citizen/requests``. Repeat-safe by ``request_id``."""

    class Meta:
        unknown = RAISE

    client_request_id = fields.UUID(
        required=True,
        data_key="request_id",
        metadata={"description": "client-chosen id; the same id again is the same request"},
    )
    case_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(REQUEST_KINDS))
    agency = AgencyId(
        load_default=None,
        metadata={"description": "the agency the request is for; default: the case's record holder"},
    )
    text = fields.String(
        load_default=None,
        validate=[validate.Length(min=1, max=REQUEST_TEXT_MAX), _not_blank],
        metadata={"description": "the citizen's own words; needed for a question and a correction"},
    )
    for_subject = fields.UUID(
        load_default=None,
        metadata={
            "description": "a minor's legal representative acting for the minor: the minor's "
            "subject_ref in this case, from GET /api/citizen/represented (never a BSN); "
            "absent: the logged-in citizen asks for themself"
        },
    )


class CitizenRequestInputSchema(CitizenRequestBodySchema, TypedSchema[SubmitCitizenRequest]):
    """A logged-in citizen's request about one of their cases, as the gateway passes it on: with
    the pseudonym from the session (a citizen never names another person) and their language."""

    subject = Pseudonym(required=True)
    language = fields.String(load_default="nl", validate=validate.OneOf(["nl", "en"]))
    representative = Pseudonym(
        allow_none=True,
        load_default=None,
        metadata={"description": "the logged-in representative acting for the minor ``subject``"},
    )


class CitizenRequestStatusSchema(Schema):
    """A citizen's request as it stands: who must answer it, by when, and what happened. Names no
    person and holds none of the citizen's words."""

    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(REQUEST_KINDS))
    agency = AgencyId(required=True, metadata={"description": "the agency that must answer"})
    status = fields.String(
        required=True, validate=validate.OneOf(["open", "overdue", "answered", "withdrawn"])
    )
    received_at = fields.AwareDateTime(required=True)
    due_on = fields.Date(required=True, metadata={"description": "the last day to answer (Europe/Amsterdam)"})
    extended = fields.Boolean(required=True)
    submitted_by = fields.String(
        load_default="subject",
        validate=validate.OneOf(["subject", "legal_representative"]),
        metadata={
            "description": "legal_representative: a minor's legal representative submitted it for the minor"
        },
    )


@dataclass(frozen=True, kw_only=True)
class ReasonText:
    """A reason for the citizen, in plain Dutch (B1) and in English."""

    nl: str
    en: str


class ReasonTextSchema(TypedSchema[ReasonText]):
    class Meta:
        unknown = RAISE

    nl = fields.String(required=True, validate=[validate.Length(min=1, max=REQUEST_TEXT_MAX), _not_blank])
    en = fields.String(required=True, validate=[validate.Length(min=1, max=REQUEST_TEXT_MAX), _not_blank])


@dataclass(frozen=True, kw_only=True)
class AnswerCitizenRequest(Command):
    request_id: UUID
    outcome: str
    reason: ReasonText
    nothing_shared: bool = False


class AnswerCitizenRequestSchema(CommandSchema[AnswerCitizenRequest]):
    """The agency's answer to a citizen's request it must answer: granted, partly granted or
    refused, with the reason in Dutch (B1) and English. The citizen sees it on their page."""

    command_name = "answer_citizen_request"
    service = "consent"
    reply_schema = CitizenRequestStatusSchema

    request_id = fields.UUID(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(REQUEST_OUTCOMES))
    reason = fields.Nested(ReasonTextSchema, required=True)
    nothing_shared = fields.Boolean(
        load_default=False,
        metadata={
            "description": "a correction request granted (or partly) without a correction run through "
            "Keten: the agency states that none of the data concerned was shared through Keten, so "
            "there is nobody here to tell (rule 6). Otherwise such an answer is refused "
            "(409 correction_not_run): run the correction with correct_share and in_answer_to"
        },
    )


@dataclass(frozen=True, kw_only=True)
class ExtendCitizenRequest(Command):
    request_id: UUID
    until: date
    reason: ReasonText | None


class ExtendCitizenRequestSchema(CommandSchema[ExtendCitizenRequest]):
    """Extends the deadline of a citizen's request once, by at most two months, within the first
    month, and only with a reason the citizen is told (AVG art. 12(3))."""

    command_name = "extend_citizen_request"
    service = "consent"
    reply_schema = CitizenRequestStatusSchema

    request_id = fields.UUID(required=True)
    until = fields.Date(required=True, metadata={"description": "the new last day to answer"})
    reason = fields.Nested(
        ReasonTextSchema,
        load_default=None,
        metadata={"description": "why more time is needed; an extension without one is refused"},
    )


class CitizenRequestForAgencySchema(CitizenRequestStatusSchema):
    """A request as the agency that must answer it reads it: the citizen's words sealed to the
    agency's own key, as shared content is (``keten_client``, ``open_sealed``)."""

    key_id = fields.String(
        allow_none=True, required=True, metadata={"description": "the key it is sealed to"}
    )
    sealed_text = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "base64 HPKE ciphertext of {text, subject: {role}}; null when the agency has "
            "no key or the citizen's records were purged (text_withheld says which)"
        },
    )
    text_withheld = fields.String(allow_none=True, load_default=None, metadata={"example": "no_key"})


class CitizenRequestListSchema(Schema):
    """The open requests an agency must answer, soonest deadline first."""

    requests = fields.List(fields.Nested(CitizenRequestForAgencySchema), required=True)


@dataclass(frozen=True, kw_only=True)
class ListCitizenRequests(Command):
    pass


class ListCitizenRequestsSchema(CommandSchema[ListCitizenRequests]):
    """The citizens' requests the agency must still answer (open and overdue), with their
    deadlines and the citizens' words sealed to the agency's key."""

    command_name = "list_citizen_requests"
    service = "consent"
    reply_schema = CitizenRequestListSchema


class CitizenRequestStepSchema(Schema):
    """One step in a request's history, as the citizen reads it."""

    step = fields.String(
        required=True,
        validate=validate.OneOf(["received", "extended", "corrected", "answered", "overdue", "withdrawn"]),
    )
    at = fields.AwareDateTime(required=True)
    due_on = fields.Date(
        allow_none=True, load_default=None, metadata={"description": "received, extended, overdue"}
    )
    outcome = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(REQUEST_OUTCOMES))
    reason = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        allow_none=True,
        load_default=None,
        metadata={"description": "{nl, en}; absent once the citizen's records were purged"},
    )
    late = fields.Boolean(allow_none=True, load_default=None)
    by = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.OneOf(["legal_representative"]),
        metadata={"description": "legal_representative: the minor's representative took this step"},
    )


class CitizenRequestViewSchema(CitizenRequestStatusSchema):
    """A request as its citizen reads it: their own words (null once purged) and its history."""

    text = fields.String(allow_none=True, required=True)
    purged = fields.Boolean(required=True, metadata={"description": "the citizen's records were purged"})
    steps = fields.List(fields.Nested(CitizenRequestStepSchema), required=True)
    objection_in_force = fields.Boolean(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "an objection to one agency's part: whether it is in force now (no "
            "shares about the subject from or to that agency); null for other requests"
        },
    )


class CitizenRequestsSchema(Schema):
    """The logged-in citizen's requests, newest first."""

    requests = fields.List(fields.Nested(CitizenRequestViewSchema), required=True)


class RepresentedSubjectSchema(Schema):
    """A minor the logged-in citizen acts for as their legal representative, in one case."""

    case_id = fields.UUID(required=True)
    subject_ref = fields.UUID(
        required=True,
        metadata={"description": "names the minor in this case (for_subject); no BSN, no pseudonym"},
    )
    role = Code(required=True, metadata={"example": "child"})
    name = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "the minor's name as the case registered it; null once purged"},
    )
    requests = fields.List(fields.Nested(CitizenRequestViewSchema), required=True)


class RepresentationsSchema(Schema):
    """The minors the logged-in citizen represents, per case, while the case says minor."""

    represented = fields.List(fields.Nested(RepresentedSubjectSchema), required=True)


class RepresentedSubjectRpcSchema(RepresentedSubjectSchema):
    """Consent's answer to the gateway (RPC only): with the minor's pseudonym, which the gateway
    needs to read the minor's overview and never shows."""

    subject = Pseudonym(required=True)


class RepresentationsRpcSchema(Schema):
    represented = fields.List(fields.Nested(RepresentedSubjectRpcSchema), required=True)
