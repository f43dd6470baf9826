"""Commands data_sharing handles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from marshmallow import Schema, fields, validate

from shared.contracts.commands.base import Command, CommandSchema
from shared.contracts.fields import AgencyId, Bsn, Code


class ShareDecisionSchema(Schema):
    share_id = fields.UUID(required=True)
    to_agency = AgencyId(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["shared", "refused"]))
    reason_code = Code(required=True, metadata={"example": "no_valid_consent"})
    reason = fields.String(allow_none=True, required=True, metadata={"description": "when refused"})
    override_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "when shared under a safety override despite an objection"},
    )


class ShareDecisionsSchema(Schema):
    """The decision on a share request, one per recipient, each on record."""

    request_id = fields.UUID(required=True)
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
    meeting_id = fields.String(load_default=None, validate=validate.Length(max=100))
    special_grounds = fields.Dict(
        keys=Code(),
        values=Code(),
        load_default=dict,
        metadata={"description": "per special or criminal category, the ground relied on"},
    )
    direction = fields.String(load_default="push", validate=validate.OneOf(["push", "pull"]))


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
