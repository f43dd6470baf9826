"""The consent service: a data subject's consent and objection per case, and the safety
overrides professionals record when the safety of others is at stake."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.consent.application import ConsentUseCases
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
    dump_reply,
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
from shared.tlog import consistency_answer, head_answer


class ConsentService:
    """Entrypoints only: each loads its message through its schema, makes one use-case call
    and answers with the command's reply schema."""

    name = "consent"

    consents = ApplicationProvider(ConsentUseCases)
    pseudonyms = Pseudonyms()
    agency_commands = AgencyCommands()
    health_check = ServiceHealth()

    @rpc(expected_exceptions=KetenError)
    def give_consent(self, command: dict[str, Any]) -> dict[str, Any]:
        """Records specific consent (``GiveConsentSchema``)."""
        loaded = load_command(GiveConsentSchema, command, pseudonymise=self.pseudonyms)
        return dump_reply(GiveConsentSchema, self.consents.give_consent(loaded))

    @rpc(expected_exceptions=KetenError)
    def withdraw_consent(self, command: dict[str, Any]) -> dict[str, Any]:
        """Records that the subject withdrew their consent (``WithdrawConsentSchema``)."""
        loaded = load_command(WithdrawConsentSchema, command, pseudonymise=self.pseudonyms)
        return dump_reply(WithdrawConsentSchema, self.consents.withdraw_consent(loaded))

    @rpc(expected_exceptions=KetenError)
    def lodge_objection(self, command: dict[str, Any]) -> dict[str, Any]:
        """Records the subject's objection (``LodgeObjectionSchema``)."""
        loaded = load_command(LodgeObjectionSchema, command, pseudonymise=self.pseudonyms)
        return dump_reply(LodgeObjectionSchema, self.consents.lodge_objection(loaded))

    @rpc(expected_exceptions=KetenError)
    def withdraw_objection(self, command: dict[str, Any]) -> dict[str, Any]:
        """Records that the subject withdrew their objection (``WithdrawObjectionSchema``)."""
        loaded = load_command(WithdrawObjectionSchema, command, pseudonymise=self.pseudonyms)
        return dump_reply(WithdrawObjectionSchema, self.consents.withdraw_objection(loaded))

    @rpc(expected_exceptions=KetenError)
    def record_safety_override(self, command: dict[str, Any]) -> dict[str, Any]:
        """Records a safety override (``RecordSafetyOverrideSchema``)."""
        loaded = load_command(RecordSafetyOverrideSchema, command, pseudonymise=self.pseudonyms)
        return dump_reply(RecordSafetyOverrideSchema, self.consents.record_safety_override(loaded))

    @rpc(expected_exceptions=KetenError)
    def end_safety_override(self, command: dict[str, Any]) -> dict[str, Any]:
        """Ends a safety override before its end date (``EndSafetyOverrideSchema``)."""
        loaded = load_command(EndSafetyOverrideSchema, command)
        return dump_reply(EndSafetyOverrideSchema, self.consents.end_safety_override(loaded))

    @consumes("case_registration", "CaseRegistered")
    def handle_case_registered(self, event: ReceivedEvent[CaseRegistered]) -> None:
        """A new case: its subjects, participants and purpose, which consents are checked against."""
        self.consents.record_case_event(event)

    @consumes("case_registration", "CaseActivated")
    def handle_case_activated(self, event: ReceivedEvent[CaseActivated]) -> None:
        """The case is active."""
        self.consents.record_case_event(event)

    @consumes("case_registration", "CaseStopped")
    def handle_case_stopped(self, event: ReceivedEvent[CaseStopped]) -> None:
        """The case stopped for a subject who objected."""
        self.consents.record_case_event(event)

    @consumes("case_registration", "CaseResumed")
    def handle_case_resumed(self, event: ReceivedEvent[CaseResumed]) -> None:
        """The case resumed for a subject who withdrew their objection."""
        self.consents.record_case_event(event)

    @consumes("case_registration", "ParticipantAdded")
    def handle_participant_added(self, event: ReceivedEvent[ParticipantAdded]) -> None:
        """An agency joined the case: it may now be named as a recipient."""
        self.consents.record_case_event(event)

    @consumes("case_registration", "ParticipantRemoved")
    def handle_participant_removed(self, event: ReceivedEvent[ParticipantRemoved]) -> None:
        """An agency left the case."""
        self.consents.record_case_event(event)

    @consumes("case_registration", "CaseClosed")
    def handle_case_closed(self, event: ReceivedEvent[CaseClosed]) -> None:
        """The case closed: no new consents or overrides in it."""
        self.consents.record_case_event(event)

    @consumes("retention", "RecordsPurged")
    def handle_records_purged(self, event: ReceivedEvent[RecordsPurged]) -> None:
        """A purge: the case's facts and the purged keys go."""
        self.consents.record_records_purged(event)

    @rpc
    def health(self) -> dict[str, Any]:
        return self.health_check()

    @rpc(expected_exceptions=KetenError)
    def published_events(self, request: dict[str, Any]) -> dict[str, Any]:
        """This service's published events after a position, as a signed page: what a consumer
        that found a gap in the stream catches up from (``shared.catchup``)."""
        return published_events_page(self.consents, request)

    @rpc
    def log_head(self) -> dict[str, Any]:
        """The latest signed head of this service's verifiable log (``shared.tlog``)."""
        return head_answer(self.consents)

    @rpc(expected_exceptions=KetenError)
    def log_consistency(self, request: dict[str, Any]) -> dict[str, Any]:
        """The proof that this service's log extends itself at an earlier size (for witnesses)."""
        return consistency_answer(self.consents, request)
