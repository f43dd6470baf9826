"""Commands the notification service handles: a professional decides a deferred notification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from marshmallow import Schema, fields, validate

from shared.contracts.commands.base import Command, CommandSchema


class DeferralStatusSchema(Schema):
    override_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"description": "ended or deferred"})
    review_on = fields.Date(metadata={"description": "when deferred: the next review"})
    released = fields.Integer(metadata={"description": "when ended: notifications sent out now"})


class DeferralDueSchema(Schema):
    """A deferral whose review date has come (``deferrals_due``): a professional of the agency
    that recorded it must end or extend it."""

    override_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    review_on = fields.Date(required=True)
    held = fields.Integer(required=True, metadata={"description": "notifications held under it"})


@dataclass(frozen=True, kw_only=True)
class EndDeferral(Command):
    override_id: UUID


class EndDeferralSchema(CommandSchema[EndDeferral]):
    """Ends the deferral of the notifications of a safety override's shares: they go out now,
    with the override's explanation. Only the agency that recorded the override may."""

    command_name = "end_deferral"
    service = "notification"
    reply_schema = DeferralStatusSchema

    override_id = fields.UUID(required=True)


@dataclass(frozen=True, kw_only=True)
class ExtendDeferral(Command):
    override_id: UUID
    review_on: date
    reason: str


class ExtendDeferralSchema(CommandSchema[ExtendDeferral]):
    """Keeps the notifications held until a new review date, with the reason why telling now
    would still endanger someone (sealed on receipt)."""

    command_name = "extend_deferral"
    service = "notification"
    reply_schema = DeferralStatusSchema

    override_id = fields.UUID(required=True)
    review_on = fields.Date(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))
