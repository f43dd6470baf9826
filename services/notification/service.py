"""The notification service: tells each data subject of each share, keeps their overview."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.notification.application import NotificationUseCases, RequestEvent
from shared.catchup import published_events_page
from shared.commands import AgencyCommands
from shared.consumer import consumes
from shared.contracts.commands import EndDeferralSchema, ExtendDeferralSchema, dump_reply, load_command
from shared.contracts.commands.notification import DeferralDueSchema
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.data_sharing import DataShared
from shared.contracts.fields import AgencyId, Pseudonym
from shared.contracts.registry import schema_instance
from shared.dependencies import ApplicationProvider, ServiceHealth, settings_timer
from shared.errors import InvalidRequest, KetenError
from shared.tlog import consistency_answer, head_answer


class NotificationService:
    """Tells each data subject of each share on their channel (or holds the notice under a
    deferral), and keeps the citizen's overview. Entrypoints only: each loads its message, makes
    one use-case call and turns the result into a message."""

    name = "notification"

    notifications = ApplicationProvider(NotificationUseCases)
    agency_commands = AgencyCommands()
    health_check = ServiceHealth()

    @consumes("case_registration", "CaseRegistered")
    @consumes("case_registration", "CaseActivated")
    @consumes("case_registration", "CaseStopped")
    @consumes("case_registration", "CaseResumed")
    @consumes("case_registration", "CaseClosed")
    @consumes("case_registration", "ParticipantAdded")
    @consumes("case_registration", "ParticipantRemoved")
    @consumes("consent", "ConsentGiven")
    @consumes("consent", "ConsentWithdrawn")
    @consumes("consent", "ObjectionLodged")
    @consumes("consent", "ObjectionWithdrawn")
    @consumes("consent", "SafetyOverrideRecorded")
    @consumes("consent", "SafetyOverrideEnded")
    @consumes("data_sharing", "ShareRefused")
    @consumes("data_sharing", "ShareCorrected")
    @consumes("data_sharing", "ErasurePassedOn")
    @consumes("retention", "RecordsPurged")
    @consumes("retention", "ErasureGranted")
    @consumes("retention", "ErasureRefused")
    def handle_event(self, event: ReceivedEvent[Any]) -> None:
        """Records what the event changes in the case facts and the citizen's overview."""
        self.notifications.learn(event)

    @consumes("consent", "CitizenRequestExtended")
    @consumes("consent", "CitizenRequestAnswered")
    @consumes("consent", "CitizenRequestOverdue")
    def handle_citizen_request(self, event: ReceivedEvent[RequestEvent]) -> None:
        """A request of the citizen's was extended, answered or is overdue: they are told."""
        self.notifications.notify_request(event)

    @consumes("data_sharing", "DataShared")
    def handle_data_shared(self, event: ReceivedEvent[DataShared]) -> None:
        """A share: its subject is told on their channel, or the notice is held under a deferral."""
        self.notifications.notify_share(event)

    @settings_timer("notify_interval")
    def send_due(self) -> None:
        """Sends the notifications that are due, retries failed ones (with backoff); looks at
        the store only when something may be due."""
        self.notifications.dispatch_when_due()

    @settings_timer("letter_render_interval")
    def render_letters(self) -> None:
        """Lays out the letters handed over since the last run as PDFs for the printing
        service, apart from the delivery run and the event consumer."""
        self.notifications.render_letters()

    # -- a professional decides a deferral (RPC, HTTP and keten.commands) ----------------------
    @rpc(expected_exceptions=KetenError)
    def end_deferral(self, command: dict[str, Any]) -> dict[str, Any]:
        """Ends a deferral (``EndDeferralSchema``): the held notifications go out now."""
        loaded = load_command(EndDeferralSchema, command)
        return dump_reply(EndDeferralSchema, self.notifications.end_deferral(loaded))

    @rpc(expected_exceptions=KetenError)
    def extend_deferral(self, command: dict[str, Any]) -> dict[str, Any]:
        """Keeps the notifications held until a new review date (``ExtendDeferralSchema``)."""
        loaded = load_command(ExtendDeferralSchema, command)
        return dump_reply(ExtendDeferralSchema, self.notifications.extend_deferral(loaded))

    @rpc(expected_exceptions=KetenError)
    def deferrals_due(self, agency: str) -> list[dict[str, Any]]:
        """The deferrals the agency recorded that are due for review (``DeferralDueSchema``)."""
        try:
            AgencyId().deserialize(agency)
        except Exception:
            raise InvalidRequest("invalid_agency", "not a valid agency id", "agency") from None
        return [
            schema_instance(DeferralDueSchema).dump(due) for due in self.notifications.deferrals_due(agency)
        ]

    # -- the citizen ----------------------------------------------------------------------------
    @rpc(expected_exceptions=KetenError)
    def get_overview(self, subject: str, language: str = "nl") -> dict[str, Any]:
        """The citizen's overview by pseudonym; the gateway calls it for a logged-in citizen only."""
        try:
            Pseudonym().deserialize(subject)
        except Exception:
            raise InvalidRequest("invalid_subject", "not a valid pseudonym", "subject") from None
        return self.notifications.overview_for(subject, "en" if language == "en" else "nl").to_json()

    @rpc
    def health(self) -> dict[str, Any]:
        """Whether the service's store, broker and consumers work."""
        return self.health_check()

    @rpc(expected_exceptions=KetenError)
    def published_events(self, request: dict[str, Any]) -> dict[str, Any]:
        """This service's published events after a position, as a signed page: what a consumer
        that found a gap in the stream catches up from (``shared.catchup``)."""
        return published_events_page(self.notifications, request)

    @rpc
    def log_head(self) -> dict[str, Any]:
        """The latest signed head of this service's verifiable log (``shared.tlog``)."""
        return head_answer(self.notifications)

    @rpc(expected_exceptions=KetenError)
    def log_consistency(self, request: dict[str, Any]) -> dict[str, Any]:
        """The proof that this service's log extends itself at an earlier size (for witnesses)."""
        return consistency_answer(self.notifications, request)
