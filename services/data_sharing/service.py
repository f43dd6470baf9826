"""The data_sharing service: decides share requests against the rules and records them,
corrects what was shared, and learns what it decides on from the other services' events."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.data_sharing.application import DataSharingUseCases
from shared.catchup import published_events_page
from shared.commands import AgencyCommands
from shared.consumer import consumes
from shared.contracts.commands import (
    CorrectShareSchema,
    GetLedgerSchema,
    GetShareProofSchema,
    RequestShareSchema,
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
from shared.contracts.events.consent import (
    ConsentGiven,
    ConsentWithdrawn,
    ObjectionLodged,
    ObjectionToAgencyEnded,
    ObjectionToAgencyLodged,
    ObjectionWithdrawn,
    SafetyOverrideEnded,
    SafetyOverrideRecorded,
)
from shared.contracts.events.retention import RecordsPurged
from shared.dependencies import ApplicationProvider, Pseudonyms, ServiceHealth
from shared.errors import KetenError
from shared.tlog import consistency_answer, head_answer, proofs_answer


class DataSharingService:
    """Entrypoints only: each loads its message through its schema, makes one use-case call
    and answers with the command's reply schema."""

    name = "data_sharing"

    sharing = ApplicationProvider(DataSharingUseCases)
    pseudonyms = Pseudonyms()
    #: Share requests delivered at once are decided in one transaction (``shared.commands``).
    agency_commands = AgencyCommands(in_batches=True)
    health_check = ServiceHealth()

    @rpc(expected_exceptions=KetenError)
    def request_share(self, command: dict[str, Any]) -> dict[str, Any]:
        """Decides a share request (``RequestShareSchema``): one decision per recipient."""
        loaded = load_command(RequestShareSchema, command, pseudonymise=self.pseudonyms)
        return dump_reply(RequestShareSchema, self.sharing.request_share(loaded))

    @rpc(expected_exceptions=KetenError)
    def correct_share(self, command: dict[str, Any]) -> dict[str, Any]:
        """Corrects a share's content (``CorrectShareSchema``); every recipient is told."""
        loaded = load_command(CorrectShareSchema, command)
        return dump_reply(CorrectShareSchema, self.sharing.correct_share(loaded))

    @rpc(expected_exceptions=KetenError)
    def get_ledger(self, command: dict[str, Any]) -> dict[str, Any]:
        """The agency's own accountability ledger (``GetLedgerSchema``); changes nothing."""
        loaded = load_command(GetLedgerSchema, command)
        return dump_reply(GetLedgerSchema, self.sharing.get_ledger(loaded))

    @consumes("case_registration", "CaseRegistered")
    def handle_case_registered(self, event: ReceivedEvent[CaseRegistered]) -> None:
        self.sharing.record_case_event(event)

    @consumes("case_registration", "CaseActivated")
    def handle_case_activated(self, event: ReceivedEvent[CaseActivated]) -> None:
        self.sharing.record_case_event(event)

    @consumes("case_registration", "CaseStopped")
    def handle_case_stopped(self, event: ReceivedEvent[CaseStopped]) -> None:
        self.sharing.record_case_event(event)

    @consumes("case_registration", "CaseResumed")
    def handle_case_resumed(self, event: ReceivedEvent[CaseResumed]) -> None:
        self.sharing.record_case_event(event)

    @consumes("case_registration", "ParticipantAdded")
    def handle_participant_added(self, event: ReceivedEvent[ParticipantAdded]) -> None:
        self.sharing.record_case_event(event)

    @consumes("case_registration", "ParticipantRemoved")
    def handle_participant_removed(self, event: ReceivedEvent[ParticipantRemoved]) -> None:
        self.sharing.record_case_event(event)

    @consumes("case_registration", "CaseClosed")
    def handle_case_closed(self, event: ReceivedEvent[CaseClosed]) -> None:
        self.sharing.record_case_event(event)

    @consumes("consent", "ConsentGiven")
    def handle_consent_given(self, event: ReceivedEvent[ConsentGiven]) -> None:
        self.sharing.record_consent_given(event)

    @consumes("consent", "ConsentWithdrawn")
    def handle_consent_withdrawn(self, event: ReceivedEvent[ConsentWithdrawn]) -> None:
        self.sharing.record_consent_withdrawn(event)

    @consumes("consent", "ObjectionLodged")
    def handle_objection_lodged(self, event: ReceivedEvent[ObjectionLodged]) -> None:
        self.sharing.record_objection(event)

    @consumes("consent", "ObjectionWithdrawn")
    def handle_objection_withdrawn(self, event: ReceivedEvent[ObjectionWithdrawn]) -> None:
        self.sharing.record_objection(event)

    @consumes("consent", "ObjectionToAgencyLodged")
    def handle_objection_to_agency_lodged(self, event: ReceivedEvent[ObjectionToAgencyLodged]) -> None:
        """The subject objected to one agency's part: shares from and to it stop for them."""
        self.sharing.record_agency_objection(event)

    @consumes("consent", "ObjectionToAgencyEnded")
    def handle_objection_to_agency_ended(self, event: ReceivedEvent[ObjectionToAgencyEnded]) -> None:
        """An objection to one agency's part ended (withdrawn, or refused by the agency)."""
        self.sharing.record_agency_objection(event)

    @consumes("consent", "SafetyOverrideRecorded")
    def handle_safety_override_recorded(self, event: ReceivedEvent[SafetyOverrideRecorded]) -> None:
        self.sharing.record_safety_override(event)

    @consumes("consent", "SafetyOverrideEnded")
    def handle_safety_override_ended(self, event: ReceivedEvent[SafetyOverrideEnded]) -> None:
        self.sharing.record_safety_override(event)

    @consumes("retention", "RecordsPurged")
    def handle_records_purged(self, event: ReceivedEvent[RecordsPurged]) -> None:
        """A purge: the subject's say and details go, and the erasure is passed on."""
        self.sharing.record_records_purged(event)

    @rpc
    def health(self) -> dict[str, Any]:
        return self.health_check()

    @rpc(expected_exceptions=KetenError)
    def published_events(self, request: dict[str, Any]) -> dict[str, Any]:
        """This service's published events after a position, as a signed page: what a consumer
        that found a gap in the stream catches up from (``shared.catchup``)."""
        return published_events_page(self.sharing, request)

    @rpc
    def log_head(self) -> dict[str, Any]:
        """The latest signed head of this service's verifiable log (``shared.tlog``)."""
        return head_answer(self.sharing)

    @rpc(expected_exceptions=KetenError)
    def log_consistency(self, request: dict[str, Any]) -> dict[str, Any]:
        """The proof that this service's log extends itself at an earlier size (for witnesses)."""
        return consistency_answer(self.sharing, request)

    @rpc(expected_exceptions=KetenError)
    def get_share_proof(self, command: dict[str, Any]) -> dict[str, Any]:
        """The receipt's proof: a decision of the agency's in the verifiable log (``GetShareProofSchema``)."""
        loaded = load_command(GetShareProofSchema, command)
        return dump_reply(GetShareProofSchema, self.sharing.get_share_proof(loaded))

    @rpc(expected_exceptions=KetenError)
    def log_proofs(self, request: dict[str, Any]) -> dict[str, Any]:
        """Inclusion proofs of shares and refusals by id (the citizen's copy carries them)."""
        return proofs_answer(self.sharing, request)
