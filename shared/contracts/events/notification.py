"""Events published by notification."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from marshmallow import fields

from shared.contracts.events.base import EventSchema
from shared.contracts.fields import Pseudonym


@dataclass(frozen=True, kw_only=True)
class NotificationSent:
    notification_id: UUID
    share_id: UUID
    case_id: UUID
    subject: str
    channel: str
    correlation_id: str | None


class NotificationSentSchema(EventSchema[NotificationSent]):
    event_name, source, aggregate_id_field = "NotificationSent", "notification", "notification_id"

    notification_id = fields.UUID(required=True)
    share_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    channel = fields.String(required=True)
    correlation_id = fields.String(allow_none=True, load_default=None)
