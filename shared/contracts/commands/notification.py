"""Commands the notification service handles: a professional decides a deferred notification."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.contracts.commands.base import CommandSchema


class DeferralStatusSchema(Schema):
    override_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"description": "ended or deferred"})
    review_on = fields.Date(metadata={"description": "when deferred: the next review"})
    released = fields.Integer(metadata={"description": "when ended: notifications sent out now"})


class EndDeferralSchema(CommandSchema):
    """Ends the deferral of the notifications of a safety override's shares: they go out now,
    with the override's explanation. Only the agency that recorded the override may."""

    command_name = "end_deferral"
    service = "notification"
    reply_schema = DeferralStatusSchema

    override_id = fields.UUID(required=True)


class ExtendDeferralSchema(CommandSchema):
    """Keeps the notifications held until a new review date, with the reason why telling now
    would still endanger someone (sealed on receipt)."""

    command_name = "extend_deferral"
    service = "notification"
    reply_schema = DeferralStatusSchema

    override_id = fields.UUID(required=True)
    review_on = fields.Date(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))
