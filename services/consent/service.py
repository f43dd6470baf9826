"""The consent service: a data subject's consent and objection per case, and the safety
overrides professionals record when the safety of others is at stake."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.consent.application import Consent
from shared.catchup import published_events_page
from shared.commands import AgencyCommands
from shared.consumer import consumes
from shared.contracts.commands import (
    EndSafetyOverrideSchema,
    GiveConsentSchema,
    LodgeObjectionSchema,
    RecordSafetyOverrideSchema,
    WithdrawConsentSchema,
    WithdrawObjectionSchema,
    load_command,
)
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.case_registration import (
    CaseActivated,
    CaseClosed,
    CaseRegistered,
    CaseResumed,
    CaseStopped,
    ParticipantAdded,
    ParticipantRemoved,
)
from shared.contracts.events.retention import RecordsPurged
from shared.dependencies import ApplicationProvider, Pseudonyms, ServiceHealth
from shared.errors import KetenError


class ConsentService:
    """Entrypoints only: each loads its message through a schema and makes one call."""

    name = "consent"

    consents = ApplicationProvider(Consent)
    pseudonyms = Pseudonyms()
    agency_commands = AgencyCommands()
    health_check = ServiceHealth()

    @rpc(expected_exceptions=KetenError)
    def give_consent(self, command: dict[str, Any]) -> dict[str, Any]:
        """Records specific consent (``GiveConsentSchema``)."""
        loaded = load_command(GiveConsentSchema, command, pseudonymise=self.pseudonyms)
        record = self.consents.give_consent(loaded)
        return {"record_id": str(record.id), "consents": len(record.consents)}

    @rpc(expected_exceptions=KetenError)
    def withdraw_consent(self, command: dict[str, Any]) -> dict[str, Any]:
        """Records that the subject withdrew their consent (``WithdrawConsentSchema``)."""
        loaded = load_command(WithdrawConsentSchema, command, pseudonymise=self.pseudonyms)
        record = self.consents.withdraw_consent(loaded)
        return {"record_id": str(record.id), "consents": len(record.consents)}

    @rpc(expected_exceptions=KetenError)
    def lodge_objection(self, command: dict[str, Any]) -> dict[str, Any]:
        """Records the subject's objection (``LodgeObjectionSchema``)."""
        loaded = load_command(LodgeObjectionSchema, command, pseudonymise=self.pseudonyms)
        return _objection(self.consents.lodge_objection(loaded))

    @rpc(expected_exceptions=KetenError)
    def withdraw_objection(self, command: dict[str, Any]) -> dict[str, Any]:
        """Records that the subject withdrew their objection (``WithdrawObjectionSchema``)."""
        loaded = load_command(WithdrawObjectionSchema, command, pseudonymise=self.pseudonyms)
        return _objection(self.consents.withdraw_objection(loaded))

    @rpc(expected_exceptions=KetenError)
    def record_safety_override(self, command: dict[str, Any]) -> dict[str, Any]:
        """Records a safety override (``RecordSafetyOverrideSchema``)."""
        loaded = load_command(RecordSafetyOverrideSchema, command, pseudonymise=self.pseudonyms)
        return _override(self.consents.record_safety_override(loaded))

    @rpc(expected_exceptions=KetenError)
    def end_safety_override(self, command: dict[str, Any]) -> dict[str, Any]:
        """Ends a safety override before its end date (``EndSafetyOverrideSchema``)."""
        return _override(self.consents.end_safety_override(load_command(EndSafetyOverrideSchema, command)))

    @consumes("case_registration", "CaseRegistered")
    def handle_case_registered(self, event: ReceivedEvent[CaseRegistered]) -> None:
        self.consents.cases.apply(event)

    @consumes("case_registration", "CaseActivated")
    def handle_case_activated(self, event: ReceivedEvent[CaseActivated]) -> None:
        self.consents.cases.apply(event)

    @consumes("case_registration", "CaseStopped")
    def handle_case_stopped(self, event: ReceivedEvent[CaseStopped]) -> None:
        self.consents.cases.apply(event)

    @consumes("case_registration", "CaseResumed")
    def handle_case_resumed(self, event: ReceivedEvent[CaseResumed]) -> None:
        self.consents.cases.apply(event)

    @consumes("case_registration", "ParticipantAdded")
    def handle_participant_added(self, event: ReceivedEvent[ParticipantAdded]) -> None:
        self.consents.cases.apply(event)

    @consumes("case_registration", "ParticipantRemoved")
    def handle_participant_removed(self, event: ReceivedEvent[ParticipantRemoved]) -> None:
        self.consents.cases.apply(event)

    @consumes("case_registration", "CaseClosed")
    def handle_case_closed(self, event: ReceivedEvent[CaseClosed]) -> None:
        self.consents.cases.apply(event)

    @consumes("retention", "RecordsPurged")
    def handle_records_purged(self, event: ReceivedEvent[RecordsPurged]) -> None:
        self.consents.cases.apply(event)

    @rpc
    def health(self) -> dict[str, Any]:
        return self.health_check()

    @rpc(expected_exceptions=KetenError)
    def published_events(self, request: dict[str, Any]) -> dict[str, Any]:
        """This service's published events after a position, as a signed page: what a consumer
        that found a gap in the stream catches up from (``shared.catchup``)."""
        return published_events_page(self.consents, request)


def _objection(record: Any) -> dict[str, Any]:
    objection = record.objection_id
    return {"record_id": str(record.id), "objection_id": str(objection) if objection else None}


def _override(override: Any) -> dict[str, Any]:
    return {"override_id": str(override.id), "status": "ended" if override.ended else "in_force"}
