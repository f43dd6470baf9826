"""Commands retention handles: legal holds from agencies, erasure requests from citizens."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from marshmallow import RAISE, fields, validate

from shared.contracts.commands.base import Command, CommandSchema
from shared.contracts.fields import Code, Pseudonym
from shared.contracts.typed import TypedSchema

#: A file number at a complaints desk, court or regulator: letters, digits and . / - _ only, so
#: that no name or other personal detail can be typed into it.
REFERENCE = r"^[A-Za-z0-9][A-Za-z0-9./_-]{0,63}$"


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

    case_id = fields.UUID(required=True)
    hold_id = fields.UUID(load_default=None, metadata={"description": "client-chosen id; repeat-safe"})
    reason_code = Code(required=True, metadata={"description": "one of legal_hold_reasons in the catalogue"})
    reference = fields.String(
        load_default=None,
        validate=validate.Regexp(REFERENCE, error="a file number: letters, digits and . / - _ only"),
        metadata={"description": "the procedure's file number, never a name"},
    )


@dataclass(frozen=True, kw_only=True)
class LiftLegalHold(Command):
    case_id: UUID
    hold_id: UUID


class LiftLegalHoldSchema(CommandSchema[LiftLegalHold]):
    """Lifts a legal hold; purges that are due proceed at the next run."""

    command_name = "lift_legal_hold"
    service = "retention"

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
