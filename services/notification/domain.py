"""Telling a data subject about a share of their data.

Pure domain. One ``Notification`` per share and subject (its id derives from both), so a share
is told once however often its event is delivered. For a minor with a representative on record,
the representative is the addressee.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

NOTIFICATION_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/notifications")
CHANNELS = ("portal", "email", "letter")


def notification_id(share_id: UUID, subject: str) -> UUID:
    return uuid5(NOTIFICATION_NAMESPACE, f"{share_id}/{subject}")


class Notification(Aggregate):
    """The notice to one subject (or their representative) of one share."""

    @event("NotificationScheduled")
    def __init__(
        self,
        share_id: UUID,
        case_id: UUID,
        subject: str,
        addressee: str,
        channel: str,
        correlation_id: str | None,
    ):
        self.share_id = share_id
        self.case_id = case_id
        self.subject = subject
        self.addressee = addressee
        self.channel = channel
        self.correlation_id = correlation_id
        self.status = "scheduled"

    @staticmethod
    def create_id(share_id: UUID, subject: str) -> UUID:
        return notification_id(share_id, subject)

    def mark_sent(self) -> None:
        if self.status == "sent":
            return
        self._sent(
            share_id=self.share_id,
            case_id=self.case_id,
            subject=self.subject,
            channel=self.channel,
            correlation_id=self.correlation_id,
        )

    @event("NotificationSent")
    def _sent(
        self, share_id: UUID, case_id: UUID, subject: str, channel: str, correlation_id: str | None
    ) -> None:
        self.status = "sent"


def addressee_for(subject: str, minor: bool, represented_by: str | None) -> str:
    """Whom to tell: a minor's representative where one is on record, otherwise the subject."""
    return represented_by if minor and represented_by else subject
