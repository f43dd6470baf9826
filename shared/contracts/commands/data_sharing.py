"""Commands data_sharing handles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.contracts.commands.base import Command, CommandSchema
from shared.contracts.fields import AgencyId, Bsn, Code, Identifier
from shared.contracts.typed import TypedSchema

OUTCOMES = ["shared", "partial", "refused"]


class CategoryDecisionSchema(Schema):
    """What became of one category of the request for one recipient."""

    category = Code(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["shared", "refused"]))
    reason_code = Code(required=True, metadata={"example": "category_not_agreed"})
    reason = fields.String(allow_none=True, required=True, metadata={"description": "when refused"})
    share_id = fields.UUID(required=True, metadata={"description": "the decision on record that says so"})


class ShareDecisionSchema(Schema):
    """One recipient's decision. Each category is decided on its own: ``partial`` when some were
    shared and others refused; then ``reason_code`` and ``reason`` are the first refusal's,
    never ``allowed``, and ``categories`` says which went through and which did not."""

    share_id = fields.UUID(required=True, metadata={"description": "the share, or the first refusal"})
    to_agency = AgencyId(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reason_code = Code(required=True, metadata={"example": "no_valid_consent"})
    reason = fields.String(allow_none=True, required=True, metadata={"description": "when refused"})
    override_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "when shared under a safety override despite an objection"},
    )
    categories = fields.List(
        fields.Nested(CategoryDecisionSchema),
        load_default=list,
        metadata={"description": "every category of the request: shared, or refused and why"},
    )


class ShareDecisionsSchema(Schema):
    """The decision on a share request, one per recipient, each on record; ``outcome`` is
    ``partial`` when anything was refused beside what was shared."""

    request_id = fields.UUID(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    decisions = fields.List(fields.Nested(ShareDecisionSchema), required=True)


@dataclass(frozen=True, kw_only=True)
class RequestShare(Command):
    request_id: UUID
    case_id: UUID
    subject: str
    from_agency: str | None
    to_agencies: tuple[str, ...]
    categories: tuple[str, ...]
    purpose: str
    content: str | None
    content_reference: str | None
    form: str
    meeting_id: str | None
    special_grounds: Mapping[str, str]
    direction: str
    also_about: tuple[str, ...] = ()


class RequestShareSchema(CommandSchema[RequestShare]):
    """Asks to share data about one subject of a case with one or more agencies (push), or
    asks another agency for data it holds (pull: ``direction=pull``, ``agency`` receives)."""

    command_name = "request_share"
    service = "data_sharing"
    reply_schema = ShareDecisionsSchema

    request_id = fields.UUID(required=True, metadata={"description": "repeat-safe id of this request"})
    case_id = fields.UUID(required=True)
    subject = Bsn(required=True, data_key="subject_bsn")
    from_agency = AgencyId(load_default=None, metadata={"description": "pull only: who holds the data"})
    to_agencies = fields.List(AgencyId(), required=True, validate=validate.Length(min=1))
    categories = fields.List(Code(), required=True, validate=validate.Length(min=1))
    purpose = Code(required=True)
    content = fields.String(load_default=None, validate=validate.Length(max=20000))
    content_reference = fields.String(load_default=None, validate=validate.Length(max=500))
    form = fields.String(load_default="written", validate=validate.OneOf(["written", "oral"]))
    meeting_id = Identifier(
        load_default=None,
        metadata={
            "description": "the consultation meeting's id in your own records, kept readable:"
            " letters, digits and . / - _ with at least one digit, never a name"
        },
    )
    special_grounds = fields.Dict(
        keys=Code(),
        values=Code(),
        load_default=dict,
        metadata={"description": "per special or criminal category, the ground relied on"},
    )
    direction = fields.String(load_default="push", validate=validate.OneOf(["push", "pull"]))
    also_about = fields.List(
        Bsn(),
        load_default=list,
        validate=validate.Length(max=20),
        metadata={
            "description": "every other subject of the case the content is also about (a report about both "
            "parents): each is decided (objection, consent) and each is told"
        },
    )


class CorrectionPassedOnSchema(Schema):
    share_id = fields.UUID(required=True)
    to_agency = AgencyId(required=True)


class CorrectionRecordedSchema(Schema):
    """The correction on record, and the shares (one per recipient) it was passed on in."""

    correction_id = fields.UUID(required=True)
    share_id = fields.UUID(required=True)
    passed_on_to = fields.List(fields.Nested(CorrectionPassedOnSchema), required=True)


@dataclass(frozen=True, kw_only=True)
class CorrectShare(Command):
    correction_id: UUID
    share_id: UUID
    content: str
    content_reference: str | None
    reason_code: str
    in_answer_to: UUID | None = None
    answer: str | None = None
    answer_reason: CorrectionAnswerReason | None = None


REASON_TEXT_MAX = 4000


@dataclass(frozen=True, kw_only=True)
class CorrectionAnswerReason:
    """What was not corrected and why, for the citizen, in plain Dutch (B1) and English."""

    nl: str
    en: str


class CorrectionAnswerReasonSchema(TypedSchema[CorrectionAnswerReason]):
    class Meta:
        unknown = RAISE

    nl = fields.String(required=True, validate=validate.Length(min=1, max=REASON_TEXT_MAX))
    en = fields.String(required=True, validate=validate.Length(min=1, max=REASON_TEXT_MAX))


#: How a correction answers the citizen's correction request it was run for (``in_answer_to``):
#: ``granted`` or ``partly_granted`` answers it; ``pending`` records the correction on the request
#: and leaves it open (more corrections follow, or the agency answers it in its own words).
CORRECTION_ANSWERS = ["granted", "partly_granted", "pending"]


class CorrectShareSchema(CommandSchema[CorrectShare]):
    """Corrects the content of a share: the share's sender does, or the case's record holder on
    the subject's request. The correction goes to every agency the content was shared with."""

    command_name = "correct_share"
    service = "data_sharing"
    reply_schema = CorrectionRecordedSchema

    correction_id = fields.UUID(required=True, metadata={"description": "repeat-safe id of this correction"})
    share_id = fields.UUID(required=True, metadata={"description": "any share the content went out in"})
    content = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    content_reference = fields.String(load_default=None, validate=validate.Length(max=500))
    reason_code = Code(required=True, metadata={"description": "one of correction_reasons in the catalogue"})
    in_answer_to = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "the citizen's correction request (AVG art. 16) this correction answers: "
            "consent records the correction on it and answers it (see answer)"
        },
    )
    answer = fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.OneOf(CORRECTION_ANSWERS),
        metadata={
            "description": "with in_answer_to (default granted): granted or partly_granted answers "
            "the request with the platform's standard text naming what was corrected; pending "
            "records the correction on the request and leaves it open"
        },
    )
    answer_reason = fields.Nested(
        CorrectionAnswerReasonSchema,
        allow_none=True,
        load_default=None,
        metadata={"description": "partly_granted: what was not corrected and why, {nl, en} (sealed)"},
    )

    @validates_schema
    def _answer_goes_with_a_request(self, data: Mapping[str, object], **kwargs: object) -> None:
        if data.get("in_answer_to") is None:
            if data.get("answer") is not None or data.get("answer_reason") is not None:
                raise ValidationError("answer and answer_reason go with in_answer_to", "in_answer_to")
            return
        if data.get("answer") == "partly_granted" and data.get("answer_reason") is None:
            raise ValidationError(
                "a partly granted answer says what was not corrected and why", "answer_reason"
            )


class LedgerCorrectionSchema(Schema):
    correction_id = fields.UUID(required=True)
    corrected_by = AgencyId(required=True)
    reason_code = Code(required=True, metadata={"description": "one of correction_reasons"})
    corrected_at = fields.AwareDateTime(required=True)


class LedgerEntrySchema(Schema):
    """One decision on one share, as its sender and its recipient both read it (``side``
    aside): the same row for both, field for field."""

    side = fields.String(
        required=True,
        validate=validate.OneOf(["provided", "received"]),
        metadata={"description": "provided: your agency sent it; received: it was for your agency"},
    )
    share_id = fields.UUID(required=True)
    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = fields.String(
        required=True, metadata={"description": "the subject's keyed pseudonym (never the BSN)"}
    )
    from_agency = AgencyId(required=True)
    to_agency = AgencyId(required=True)
    direction = fields.String(required=True, validate=validate.OneOf(["push", "pull"]))
    form = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(["written", "oral"]),
        metadata={"description": "written or oral; null where the decision did not record it"},
    )
    meeting_id = fields.String(required=True, allow_none=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["shared", "refused"]))
    reason_code = Code(required=True, metadata={"description": "allowed, or why it was refused"})
    purpose = Code(required=True)
    categories = fields.List(Code(), required=True)
    sender_ground = Code(required=True, allow_none=True)
    sender_provision = fields.String(
        required=True, allow_none=True, metadata={"description": "the law and article the ground rests on"}
    )
    recipient_ground = Code(required=True, allow_none=True)
    recipient_provision = fields.String(required=True, allow_none=True)
    special_grounds = fields.Dict(keys=Code(), values=Code(), required=True)
    catalogue_version = fields.String(required=True)
    override_id = fields.UUID(required=True, allow_none=True)
    decided_at = fields.AwareDateTime(required=True)
    received_at = fields.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": "when the broker confirmed the ShareReceived message into the "
            "recipient's inbox queue; null for a refusal or while it is on its way"
        },
    )
    corrections = fields.List(
        fields.Nested(LedgerCorrectionSchema),
        required=True,
        metadata={"description": "corrections of the content, each passed on to the recipient"},
    )
    erasure_passed_on_at = fields.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": "when the platform purged the share and told the recipient to erase its copy"
        },
    )


class LedgerSchema(Schema):
    """The agency's accountability ledger for a period: every share it provided and received,
    refused ones included, oldest first."""

    agency = AgencyId(required=True)
    since = fields.Date(required=True, allow_none=True)
    until = fields.Date(required=True, allow_none=True)
    entries = fields.List(fields.Nested(LedgerEntrySchema), required=True)


#: The fields of ``get_ledger`` that ``GET /api/agencies/{agency}/ledger`` takes as its query.
LEDGER_QUERY = ("side", "since", "until", "case_id", "subject")


@dataclass(frozen=True, kw_only=True)
class GetLedger(Command):
    of_agency: str | None
    side: str
    since: date | None
    until: date | None
    case_id: UUID | None
    subject: str | None


class GetLedgerSchema(CommandSchema[GetLedger]):
    """Asks for the agency's accountability ledger (also ``GET /api/agencies/{agency}/ledger``):
    per case, subject and period, every share it provided and received, refused ones included.
    Only the sending agency's own ledger: naming another agency is refused (403). Changes
    nothing."""

    command_name = "get_ledger"
    service = "data_sharing"
    reply_schema = LedgerSchema

    of_agency = AgencyId(
        load_default=None, metadata={"description": "whose ledger: your own agency (the default)"}
    )
    side = fields.String(
        load_default="both",
        validate=validate.OneOf(["provided", "received", "both"]),
        metadata={"description": "what your agency provided, received, or both"},
    )
    since = fields.Date(load_default=None, metadata={"description": "decided on or after this date"})
    until = fields.Date(load_default=None, metadata={"description": "decided on or before this date"})
    case_id = fields.UUID(load_default=None, metadata={"description": "one case only"})
    subject = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[0-9a-f]{32}$", error="a subject's pseudonym, as the ledger names it"),
        metadata={"description": "one subject only: the pseudonym as the ledger's rows name it"},
    )


class ShareProofSchema(Schema):
    """A share (or refusal) in data_sharing's verifiable log: the signed tree head, and the
    inclusion proof of the decision's leaf in it (RFC 9162). Check it offline with
    ``keten log verify --copy``; keep the head to check later heads against (a witness)."""

    share_id = fields.UUID(required=True)
    verifiable_log = fields.Dict(
        required=True,
        metadata={
            "description": "head: {log, tree_size, root_hash, timestamp, key_id, public_key, signature};"
            " inclusion: {leaf_index, leaf_hash, tree_size, audit_path}"
        },
    )


@dataclass(frozen=True, kw_only=True)
class GetShareProof(Command):
    share_id: UUID


class GetShareProofSchema(CommandSchema[GetShareProof]):
    """Asks for the proof that a decision the agency sent or received is in data_sharing's
    verifiable log (also ``GET /api/shares/{share_id}/proof``): the receipt's proof. A decision
    is appended when it is relayed and proven against the next head: asked at once after the
    decision, the answer may be ``not_logged_yet`` (ask again a moment later). Changes nothing."""

    command_name = "get_share_proof"
    service = "data_sharing"
    reply_schema = ShareProofSchema

    share_id = fields.UUID(required=True)
