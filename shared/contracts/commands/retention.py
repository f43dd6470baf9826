"""Commands retention handles (legal holds from agencies, erasure requests from citizens), and
what retention answers: a hold's status, the decision on an erasure request, the schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from marshmallow import RAISE, Schema, fields, post_dump, validate

from shared.contracts.commands.base import Command, CommandSchema
from shared.contracts.fields import AgencyId, Code, Identifier, Pseudonym
from shared.contracts.typed import TypedSchema


class LegalHoldStatusSchema(Schema):
    """The legal hold a command was about, and whether it is in force or lifted now."""

    case_id = fields.UUID(required=True)
    hold_id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["in_force", "lifted"]))


@dataclass(frozen=True, kw_only=True)
class PlaceLegalHold(Command):
    case_id: UUID
    hold_id: UUID | None
    reason_code: str
    reference: str | None


class PlaceLegalHoldSchema(CommandSchema[PlaceLegalHold]):
    """Suspends every purge of a case while a complaint, objection, court case or inquiry runs."""

    command_name = "place_legal_hold"
    service = "retention"
    reply_schema = LegalHoldStatusSchema

    case_id = fields.UUID(required=True)
    hold_id = fields.UUID(load_default=None, metadata={"description": "client-chosen id; repeat-safe"})
    reason_code = Code(required=True, metadata={"description": "one of legal_hold_reasons in the catalogue"})
    reference = Identifier(
        load_default=None,
        metadata={
            "description": "the procedure's file number at the complaints desk, court or regulator,"
            " kept readable: letters, digits and . / - _ with at least one digit, never a name"
        },
    )


@dataclass(frozen=True, kw_only=True)
class LiftLegalHold(Command):
    case_id: UUID
    hold_id: UUID


class LiftLegalHoldSchema(CommandSchema[LiftLegalHold]):
    """Lifts a legal hold; purges that are due proceed at the next run."""

    command_name = "lift_legal_hold"
    service = "retention"
    reply_schema = LegalHoldStatusSchema

    case_id = fields.UUID(required=True)
    hold_id = fields.UUID(required=True)


@dataclass(frozen=True, kw_only=True)
class RequestErasure:
    """Not an agency's command: the citizen's own request, with their pseudonym."""

    subject: str
    case_id: UUID
    language: str


class ErasureRequestSchema(TypedSchema[RequestErasure]):
    """A logged-in citizen asks that their records of a case be erased (the gateway fills in the
    pseudonym from the session; a citizen never names another person)."""

    class Meta:
        unknown = RAISE

    subject = Pseudonym(required=True)
    case_id = fields.UUID(required=True)
    language = fields.String(load_default="nl", validate=validate.OneOf(["nl", "en"]))


class ErasureDecisionSchema(Schema):
    """The decision on a citizen's erasure request: ``granted``, ``erased_already``, or
    ``refused`` with its reason (a code, words in the citizen's language and the article of the
    law). A reason appears only with a refusal."""

    case_id = fields.UUID(required=True)
    decision = fields.String(required=True, validate=validate.OneOf(["granted", "erased_already", "refused"]))
    reason_code = Code(metadata={"description": "when refused"})
    reason = fields.String(metadata={"description": "when refused: why, in the citizen's language"})
    article = fields.String(metadata={"description": "when refused: the article of the law"})

    @post_dump
    def _without_what_does_not_apply(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {name: value for name, value in data.items() if value is not None}


class ScheduleEntrySchema(Schema):
    """One record of a case in the retention schedule an agency reads: its rule, when its
    period started, when it is due and its status. It names no person."""

    record_id = fields.String(required=True, metadata={"description": "the case id, or the share id"})
    case_id = fields.UUID(required=True)
    record_kind = Code(required=True, metadata={"description": "case_records, share_records or outcome"})
    recipient = AgencyId(allow_none=True, metadata={"description": "share records: the agency they went to"})
    retention_class = fields.String(required=True)
    rule_version = fields.Integer(required=True)
    catalogue_version = fields.String(required=True)
    counted_from = fields.DateTime(allow_none=True, metadata={"description": "when the period started"})
    due_at = fields.DateTime(allow_none=True, metadata={"description": "none while the case runs, or kept"})
    status = fields.String(
        required=True,
        validate=validate.OneOf(["open", "scheduled", "kept", "on_hold", "purged"]),
    )
    purged_at = fields.DateTime(allow_none=True)
    rule = fields.String(required=True, metadata={"example": "consultation-short/case_records v1"})
