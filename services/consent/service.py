"""The consent service: a data subject's consent and objection per case, and the safety
overrides professionals record when the safety of others is at stake."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from nameko.rpc import rpc

from services.consent.application import ConsentUseCases
from shared.catchup import published_events_page
from shared.commands import AgencyCommands
from shared.consumer import consumes
from shared.contracts.commands import (
    AnswerCitizenRequestSchema,
    CitizenRequestInputSchema,
    EndSafetyOverrideSchema,
    ExtendCitizenRequestSchema,
    GiveConsentSchema,
    ListCitizenRequestsSchema,
    LodgeObjectionSchema,
    RecordSafetyOverrideSchema,
    WithdrawConsentSchema,
    WithdrawObjectionSchema,
    dump_reply,
    load_command,
)
from shared.contracts.commands.consent import (
    CitizenRequestsSchema,
    CitizenRequestStatusSchema,
    RepresentationsRpcSchema,
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
from shared.contracts.events.data_sharing import ShareCorrected
from shared.contracts.events.retention import RecordsPurged
from shared.contracts.fields import Pseudonym
from shared.contracts.registry import schema_instance
from shared.dependencies import ApplicationProvider, Pseudonyms, ServiceHealth
from shared.errors import InvalidRequest, KetenError
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

    # -- the citizen's requests (from the gateway, with the citizen's pseudonym) ---------------
    @rpc(expected_exceptions=KetenError)
    def submit_citizen_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """A logged-in citizen's request (``CitizenRequestInputSchema``), with its deadline."""
        loaded = load_command(CitizenRequestInputSchema, request)
        return _status(self.consents.submit_citizen_request(loaded))

    @rpc(expected_exceptions=KetenError)
    def record_erasure_decision(
        self, subject: str, request_id: str, decision: dict[str, Any]
    ) -> dict[str, Any]:
        """Answers the citizen's erasure request with retention's decision (``ErasureDecisionSchema``)."""
        return _status(
            self.consents.record_erasure_decision(
                _uuid(request_id, "request_id"),
                _pseudonym(subject),
                str(decision.get("decision")),
                decision.get("reason_code"),
            )
        )

    @rpc(expected_exceptions=KetenError)
    def withdraw_citizen_request(self, subject: str, request_id: str) -> dict[str, Any]:
        """The citizen takes back a request not yet answered."""
        return _status(
            self.consents.withdraw_citizen_request(_uuid(request_id, "request_id"), _pseudonym(subject))
        )

    @rpc(expected_exceptions=KetenError)
    def citizen_requests(self, subject: str) -> dict[str, Any]:
        """The citizen's requests with their words and history (``CitizenRequestsSchema``)."""
        found = self.consents.citizen_requests(_pseudonym(subject))
        return cast(dict[str, Any], schema_instance(CitizenRequestsSchema).dump(found))

    @rpc(expected_exceptions=KetenError)
    def represented(self, representative: str) -> dict[str, Any]:
        """The minors the logged-in citizen represents, per case, with their requests there
        (``RepresentationsRpcSchema``: with the minors' pseudonyms, for the gateway only)."""
        found = self.consents.represented(_pseudonym(representative))
        return cast(dict[str, Any], schema_instance(RepresentationsRpcSchema).dump(found))

    @rpc(expected_exceptions=KetenError)
    def answer_citizen_request(self, command: dict[str, Any]) -> dict[str, Any]:
        """The agency's answer to a citizen's request (``AnswerCitizenRequestSchema``)."""
        loaded = load_command(AnswerCitizenRequestSchema, command)
        return dump_reply(AnswerCitizenRequestSchema, self.consents.answer_citizen_request(loaded))

    @rpc(expected_exceptions=KetenError)
    def extend_citizen_request(self, command: dict[str, Any]) -> dict[str, Any]:
        """Extends a request's deadline once, with a reason (``ExtendCitizenRequestSchema``)."""
        loaded = load_command(ExtendCitizenRequestSchema, command)
        return dump_reply(ExtendCitizenRequestSchema, self.consents.extend_citizen_request(loaded))

    @rpc(expected_exceptions=KetenError)
    def list_citizen_requests(self, command: dict[str, Any]) -> dict[str, Any]:
        """What the agency must still answer (``ListCitizenRequestsSchema``)."""
        loaded = load_command(ListCitizenRequestsSchema, command)
        return dump_reply(ListCitizenRequestsSchema, self.consents.list_citizen_requests(loaded))

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

    @consumes("data_sharing", "ShareCorrected")
    def handle_share_corrected(self, event: ReceivedEvent[ShareCorrected]) -> None:
        """A correction passed on (rule 6): if it was run for a citizen's correction request, it
        is recorded on the request and answers it."""
        self.consents.record_share_corrected(event)

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


def _status(status: object) -> dict[str, Any]:
    return cast(dict[str, Any], schema_instance(CitizenRequestStatusSchema).dump(status))


def _uuid(value: str, field: str) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidRequest("invalid_field", "not a valid UUID", field) from None


def _pseudonym(value: str) -> str:
    try:
        return str(Pseudonym().deserialize(value))
    except Exception:
        raise InvalidRequest("invalid_field", "not a valid pseudonym", "subject") from None
