"""The consent service: a data subject's consent (and later objection) per case."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.consent.application import Consent
from shared.commands import AgencyCommands
from shared.consumer import consumes
from shared.contracts.commands import GiveConsentSchema, load_command
from shared.contracts.envelope import ReceivedEvent
from shared.dependencies import ApplicationProvider, ServiceHealth
from shared.errors import KetenError


class ConsentService:
    """Entrypoints only: each loads its message through a schema and makes one call."""

    name = "consent"

    consents = ApplicationProvider(Consent)
    agency_commands = AgencyCommands()
    health_check = ServiceHealth()

    @rpc(expected_exceptions=KetenError)
    def give_consent(self, command: dict[str, Any]) -> dict[str, Any]:
        """Records specific consent (``GiveConsentSchema``)."""
        record = self.consents.give_consent(load_command(GiveConsentSchema, command))
        return {"record_id": str(record.id), "consents": len(record.consents)}

    @consumes("case_registration", "CaseRegistered")
    def handle_case_registered(self, event: ReceivedEvent) -> None:
        self.consents.cases.apply(event)

    @consumes("case_registration", "CaseClosed")
    def handle_case_closed(self, event: ReceivedEvent) -> None:
        self.consents.cases.apply(event)

    @consumes("retention", "RecordsPurged")
    def handle_records_purged(self, event: ReceivedEvent) -> None:
        self.consents.cases.apply(event)

    @rpc
    def health(self) -> dict[str, Any]:
        return self.health_check()
