"""The data_sharing service: decides share requests against the rules and records them."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.data_sharing.application import DataSharing
from services.data_sharing.domain import Share
from shared.commands import AgencyCommands
from shared.consumer import consumes
from shared.contracts.commands import RequestShareSchema, load_command
from shared.contracts.envelope import ReceivedEvent
from shared.dependencies import ApplicationProvider, ServiceHealth
from shared.errors import KetenError


class DataSharingService:
    """Entrypoints only: each loads its message through a schema and makes one call."""

    name = "data_sharing"

    sharing = ApplicationProvider(DataSharing)
    agency_commands = AgencyCommands()
    health_check = ServiceHealth()

    @rpc(expected_exceptions=KetenError)
    def request_share(self, command: dict[str, Any]) -> dict[str, Any]:
        """Decides a share request (``RequestShareSchema``): one decision per recipient."""
        loaded = load_command(RequestShareSchema, command)
        decisions = self.sharing.request_share(loaded)
        result = []
        for decision in decisions:
            shared = isinstance(decision, Share)
            result.append(
                {
                    "share_id": str(decision.id),
                    "to_agency": decision.to_agency,
                    "outcome": "shared" if shared else "refused",
                    "reason_code": "allowed" if shared else decision.reason_code,
                    "reason": None if shared else decision.reason,
                }
            )
        return {"request_id": str(loaded["request_id"]), "decisions": result}

    @consumes("case_registration", "CaseRegistered")
    def handle_case_registered(self, event: ReceivedEvent) -> None:
        self.sharing.cases.apply(event)

    @consumes("case_registration", "CaseClosed")
    def handle_case_closed(self, event: ReceivedEvent) -> None:
        self.sharing.cases.apply(event)

    @consumes("consent", "ConsentGiven")
    def handle_consent_given(self, event: ReceivedEvent) -> None:
        self.sharing.record_consent_given(event)

    @consumes("retention", "RecordsPurged")
    def handle_records_purged(self, event: ReceivedEvent) -> None:
        self.sharing.record_records_purged(event)

    @rpc
    def health(self) -> dict[str, Any]:
        return self.health_check()
