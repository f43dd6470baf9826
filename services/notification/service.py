"""The notification service: tells each data subject of each share, keeps their overview."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.notification.application import Notifications
from shared.consumer import consumes
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.fields import Pseudonym
from shared.dependencies import ApplicationProvider, ServiceHealth
from shared.errors import InvalidRequest, KetenError


class NotificationService:
    """Entrypoints only: each loads its message and makes one call."""

    name = "notification"

    notifications = ApplicationProvider(Notifications)
    health_check = ServiceHealth()

    @consumes("case_registration", "CaseRegistered")
    def handle_case_registered(self, event: ReceivedEvent) -> None:
        self.notifications.record_case_registered(event)

    @consumes("case_registration", "CaseClosed")
    def handle_case_closed(self, event: ReceivedEvent) -> None:
        self.notifications.record_case_closed(event)

    @consumes("consent", "ConsentGiven")
    def handle_consent_given(self, event: ReceivedEvent) -> None:
        self.notifications.record_consent_given(event)

    @consumes("data_sharing", "DataShared")
    def handle_data_shared(self, event: ReceivedEvent) -> None:
        self.notifications.notify_share(event)

    @consumes("data_sharing", "ShareRefused")
    def handle_share_refused(self, event: ReceivedEvent) -> None:
        self.notifications.record_share_refused(event)

    @consumes("retention", "RecordsPurged")
    def handle_records_purged(self, event: ReceivedEvent) -> None:
        self.notifications.record_records_purged(event)

    @consumes("retention", "ErasureGranted")
    def handle_erasure_granted(self, event: ReceivedEvent) -> None:
        self.notifications.record_erasure_decision(event)

    @consumes("retention", "ErasureRefused")
    def handle_erasure_refused(self, event: ReceivedEvent) -> None:
        self.notifications.record_erasure_decision(event)

    @rpc(expected_exceptions=KetenError)
    def get_overview(self, subject: str, language: str = "nl") -> dict[str, Any]:
        """The citizen's overview by pseudonym; the gateway calls it for a logged-in citizen only."""
        try:
            Pseudonym().deserialize(subject)
        except Exception:
            raise InvalidRequest("invalid_subject", "not a valid pseudonym", "subject") from None
        return self.notifications.overview_for(subject, "en" if language == "en" else "nl")

    @rpc
    def health(self) -> dict[str, Any]:
        return self.health_check()
