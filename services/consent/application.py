"""Use cases of the consent service: a subject's consent given and withdrawn, their objection
lodged and withdrawn, a safety override recorded and ended; and what other services' events
change here (the facts about cases that these use cases check against, purged keys).

Each use case takes its command as the service loaded it (a frozen dataclass from
``shared.contracts.commands``, BSNs already pseudonyms) and returns a small result
(``ConsentRecorded``, ``ObjectionStatus``, ``SafetyOverrideStatus``), never the aggregate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Tracking

from services.consent import corrections, request_index
from services.consent.domain import (
    IMMEDIATE_KINDS,
    REMINDER_DAYS,
    CitizenRequest,
    ConsentRecord,
    NoticeDeferral,
    OverrideScope,
    Professional,
    SafetyOverride,
    acts_for,
    citizen_request_id,
    consent_record_id,
    local_date,
    subject_reference,
)
from services.consent.inbox import SealedText, request_due, request_received
from services.consent.representations import RepresentedCaseFacts
from shared import metrics
from shared.agencies import AgencyRegistry
from shared.application import KetenApplication
from shared.casefacts import CaseEvent
from shared.caseview import CaseView
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.commands import (
    AnswerCitizenRequest,
    EndSafetyOverride,
    ExtendCitizenRequest,
    GiveConsent,
    ListCitizenRequests,
    LodgeObjection,
    RecordSafetyOverride,
    SubmitCitizenRequest,
    WithdrawConsent,
    WithdrawObjection,
)
from shared.contracts.envelope import OutgoingMessage, ReceivedEvent
from shared.contracts.events.data_sharing import ShareCorrected
from shared.contracts.events.retention import RecordsPurged
from shared.db import Cursor
from shared.errors import Conflict, InvalidRequest, NotAuthorised, NotFound, domain_refusals
from shared.ldv import Processing
from shared.reasons import request_answers
from shared.sealed import PURGED, KeyScope, Sealed
from shared.wire import seal_for


@dataclass(frozen=True)
class ConsentRecorded:
    """The subject's consent record in the case and how many consents it holds now (the
    reply's ``ConsentRecordedSchema``)."""

    record_id: UUID
    consents: int

    @classmethod
    def of(cls, record: ConsentRecord) -> ConsentRecorded:
        return cls(record.id, len(record.consents))


@dataclass(frozen=True)
class ObjectionStatus:
    """The subject's consent record in the case and the objection in force, if any (the reply's
    ``ObjectionSchema``)."""

    record_id: UUID
    objection_id: UUID | None

    @classmethod
    def of(cls, record: ConsentRecord) -> ObjectionStatus:
        return cls(record.id, record.objection_id)


@dataclass(frozen=True)
class SafetyOverrideStatus:
    """A safety override and whether it is ``in_force`` or ``ended`` (the reply's
    ``SafetyOverrideStatusSchema``)."""

    override_id: UUID
    status: str

    @classmethod
    def of(cls, override: SafetyOverride) -> SafetyOverrideStatus:
        return cls(override.id, "ended" if override.ended else "in_force")


# -- the citizen's requests ---------------------------------------------------------------------
#: Who records what a citizen does on their own page (an objection, a consent withdrawn).
CITIZEN = "citizen"
#: Who records what a minor's legal representative does for the minor on their page.
REPRESENTATIVE = "legal-representative"


def _acting(request: CitizenRequest) -> str:
    """Who the consent record says acted: the citizen, or a minor's legal representative."""
    return REPRESENTATIVE if request.representative else CITIZEN


def submitted_by(request: CitizenRequest | request_index.RequestRow) -> str:
    """``subject``, or ``legal_representative`` when a minor's representative submitted it."""
    if isinstance(request, request_index.RequestRow):
        return request.submitted_by
    return "legal_representative" if request.representative else "subject"


@dataclass(frozen=True)
class CitizenRequestStatus:
    """A request as it stands (``CitizenRequestStatusSchema``): no personal data."""

    request_id: UUID
    case_id: UUID
    kind: str
    agency: str
    status: str
    received_at: datetime
    due_on: date
    extended: bool
    submitted_by: str

    @classmethod
    def of(cls, request: CitizenRequest | request_index.RequestRow) -> CitizenRequestStatus:
        """From the aggregate, or from its row in the index (the listings)."""
        return cls(
            request.request_id if isinstance(request, request_index.RequestRow) else request.id,
            request.case_id,
            request.kind,
            request.agency,
            request.status,
            request.received_at,
            request.due_on,
            request.extended,
            submitted_by(request),
        )


@dataclass(frozen=True)
class CitizenRequestForAgency(CitizenRequestStatus):
    """A request as the agency that must answer it reads it (``CitizenRequestForAgencySchema``)."""

    key_id: str | None
    sealed_text: str | None
    text_withheld: str | None


@dataclass(frozen=True)
class CitizenRequestList:
    requests: tuple[CitizenRequestForAgency, ...]


@dataclass(frozen=True)
class RequestStep:
    """One step of a request's history (``CitizenRequestStepSchema``)."""

    step: str
    at: datetime
    due_on: date | None = None
    outcome: str | None = None
    reason: dict[str, str] | None = None
    late: bool | None = None
    #: ``legal_representative`` where a minor's representative took this step for the minor.
    by: str | None = None


@dataclass(frozen=True)
class CitizenRequestView(CitizenRequestStatus):
    """A request as its citizen reads it (``CitizenRequestViewSchema``)."""

    text: str | None
    purged: bool
    steps: tuple[RequestStep, ...]
    #: For an objection to one agency's part: whether it is in force now (None for the others).
    objection_in_force: bool | None = None


@dataclass(frozen=True)
class CitizenRequests:
    requests: tuple[CitizenRequestView, ...]


@dataclass(frozen=True)
class RepresentedSubject:
    """A minor a representative acts for in one case: the case, the reference the page and the
    citizen API name the minor by (``subject_reference``), the minor's pseudonym (for the
    gateway's calls only, never shown), their role, and their requests in that case."""

    case_id: UUID
    subject_ref: UUID
    subject: str
    role: str
    #: The minor's name as the case registered it (for their representative's page); None once
    #: their records were purged.
    name: str | None
    requests: tuple[CitizenRequestView, ...]


@dataclass(frozen=True)
class Representations:
    represented: tuple[RepresentedSubject, ...]


@dataclass(frozen=True)
class Escalation:
    """What ``escalate_requests`` did: agencies reminded, requests become overdue, and how many
    are overdue now."""

    reminded: int
    became_overdue: int
    overdue: int


_STEPS = {
    "CitizenRequestReceived": "received",
    "CitizenRequestExtended": "extended",
    "CitizenRequestAnswered": "answered",
    "CitizenRequestOverdue": "overdue",
    "CitizenRequestWithdrawn": "withdrawn",
    "CitizenRequestCorrectionRecorded": "corrected",
}


#: A citizen's request on the law's clock, step by step, in the processing log (LDV): the
#: subject, and a representative acting for them, by pseudonym; the agency that must answer.
REQUEST_PROCESSINGS = {
    name: Processing(f"citizen's request {step}", "handle-citizen-request", actor=actor, also_subjects=also)
    for name, step, actor, also in (
        ("CitizenRequestReceived", "received", "", ("representative",)),
        ("CitizenRequestExtended", "extended", "agency", ()),
        ("CitizenRequestCorrectionRecorded", "corrected", "agency", ()),
        ("CitizenRequestAnswered", "answered", "agency", ()),
        ("CitizenRequestOverdue", "overdue", "agency", ()),
        ("CitizenRequestWithdrawn", "withdrawn", "", ("representative",)),
    )
}


class CitizenRequestUseCases(KetenApplication):
    """The citizen's requests: the use cases of ``ConsentUseCases`` that concern them (one
    store, and one transaction with the consent record an objection or a withdrawal changes)."""

    catalogue: Catalogue
    cases: RepresentedCaseFacts
    agencies: AgencyRegistry
    read_model_tables = [request_index.CREATE, *request_index.INDEXES]

    def __init__(self, settings: Settings, env: dict[str, str] | None = None):
        super().__init__(settings, env)
        if request_index.missing_columns(self.sql):
            self.rebuild_request_index()  # a store from before the index held these columns

    def _consent_record(self, case: CaseView, subject: str) -> ConsentRecord:
        raise NotImplementedError

    # -- what the citizen asks ----------------------------------------------------------------
    def submit_citizen_request(self, command: SubmitCitizenRequest) -> CitizenRequestStatus:
        """Records the citizen's request with its deadline; an objection or a consent withdrawal
        takes effect at once. Repeat-safe by the client's request id."""
        request_id = citizen_request_id(command.subject, command.client_request_id)
        existing = self._find_request(request_id)
        if existing is not None:
            if existing.case_id != command.case_id or existing.kind != command.kind:
                raise Conflict(
                    "request_exists", "a request with this id exists for another case or kind", "request_id"
                )
            return CitizenRequestStatus.of(existing)
        case = self._citizens_case(command.case_id, command.subject, command.representative)
        if command.for_subject is not None and (
            command.representative is None
            or command.for_subject != subject_reference(case.case_id, command.subject)
        ):
            raise NotFound("unknown_case", "you are not a data subject of a case with this id", "case_id")
        agency = command.agency or case.record_holder
        if not case.takes_part(agency):
            raise InvalidRequest("not_a_participant", "this agency does not take part in the case", "agency")
        if command.kind in ("question", "correction") and command.text is None:
            raise InvalidRequest("text_required", "say in your own words what you ask", "text")
        scope = KeyScope(case.case_id, command.subject)
        with domain_refusals():
            request = CitizenRequest.receive(
                case_id=case.case_id,
                subject=command.subject,
                kind=command.kind,
                agency=agency,
                text=self.seal(scope, command.text),
                received_at=datetime.now(UTC),
                client_request_id=command.client_request_id,
                representative=command.representative,
                agency_named=command.agency is not None,
            )
        immediate_objection = command.kind == "objection" and command.agency is None
        if command.kind == "objection" and not case.is_open:
            raise Conflict("case_not_open", f"the case is {case.status}", "case_id")
        changed: list[Aggregate] = [request]
        if immediate_objection:
            changed.append(self._object_at_once(case, request))
        elif command.kind == "objection":
            changed.append(self._object_to_agency_at_once(case, request))
        elif command.kind == "consent_withdrawal":
            changed.append(self._withdraw_consent_at_once(case, request))
        self._save_requests(*changed)
        return CitizenRequestStatus.of(request)

    def record_erasure_decision(
        self, request_id: UUID, subject: str, decision: str, reason_code: str | None
    ) -> CitizenRequestStatus:
        """Answers a citizen's erasure request with what retention decided (it decides erasure:
        ``granted``, ``erased_already`` or ``refused`` for one of the catalogue's reasons)."""
        request = self._citizens_request(request_id, subject)
        if not request.is_open:
            return CitizenRequestStatus.of(request)  # a repeated decision changes nothing
        if decision == "refused" and reason_code in self.catalogue.erasure_refusals:
            label = self.catalogue.erasure_refusals[reason_code].label
            reason, outcome = {"nl": label("nl"), "en": label("en")}, "refused"
        else:
            text = request_answers()["erased_already" if decision == "erased_already" else "erasure_granted"]
            reason, outcome = {"nl": text.nl, "en": text.en}, "granted"
        self._answer(request, request.agency, outcome, reason)
        return CitizenRequestStatus.of(request)

    def withdraw_citizen_request(self, request_id: UUID, subject: str) -> CitizenRequestStatus:
        """The citizen (``subject``: who is logged in, the subject or a minor's representative)
        takes back a request that was not answered yet, or an objection to one agency's part
        still in force (shares from and to that agency resume); repeat-safe."""
        request = self._citizens_request(request_id, subject)
        if request.status != "withdrawn":
            representative = subject if subject != request.subject else None
            record = self._agency_objection_of(request)
            with domain_refusals():
                request.withdraw(representative=representative, in_force=record is not None)
                if record is not None:
                    record.end_agency_objection(
                        request.id, REPRESENTATIVE if representative else CITIZEN, "withdrawn"
                    )
            self._save_requests(request, *([record] if record is not None else []))
        return CitizenRequestStatus.of(request)

    def represented(self, representative: str) -> Representations:
        """The minors ``representative`` acts for, per case (while the case's facts say minor
        and name them), each with the minor's requests in that case."""
        found = []
        cases = self.cases
        for case_id, subject in cases.represented_by(representative):
            case = cases.get(case_id)
            if case is None or not acts_for(case, subject, representative):
                continue
            requests = tuple(r for r in self.citizen_requests(subject).requests if r.case_id == case_id)
            found.append(
                RepresentedSubject(
                    case_id=case_id,
                    subject_ref=subject_reference(case_id, subject),
                    subject=subject,
                    role=case.subjects[subject].role,
                    name=self._name_of(case.subjects[subject].details),
                    requests=requests,
                )
            )
        return Representations(tuple(found))

    def citizen_requests(self, subject: str) -> CitizenRequests:
        """The citizen's requests with their words and history, newest first."""
        return CitizenRequests(tuple(self._view(row) for row in request_index.of_subject(self.sql, subject)))

    # -- what the agency that must answer does ------------------------------------------------
    def answer_citizen_request(self, command: AnswerCitizenRequest) -> CitizenRequestStatus:
        """The agency's answer. To an objection to its own part (in force since it was received):
        granted or partly granted keeps it in force until the citizen withdraws it; refused, on
        the ground the reason states, ends it, and shares from and to the agency resume."""
        request = self._agencys_request(command.request_id, command.agency)
        reason = {"nl": command.reason.nl, "en": command.reason.en}
        record = self._agency_objection_of(request)
        if record is None or command.outcome != "refused":
            self._answer(
                request, command.agency, command.outcome, reason, nothing_shared=command.nothing_shared
            )
            return CitizenRequestStatus.of(request)
        self._answer(request, command.agency, command.outcome, reason, save=False)
        record.end_agency_objection(request.id, command.agency, "refused")
        self._save_requests(request, record)
        return CitizenRequestStatus.of(request)

    def record_share_corrected(self, event: ReceivedEvent[ShareCorrected]) -> None:
        """A correction run for a citizen's correction request (rule 6, ``in_answer_to``): it is
        recorded on the request once, and answers it unless the agency said ``pending``. A
        correction for no request, or for one that is not the correcting agency's correction
        request about this subject and case, or one answered already, changes no request."""
        corrected = event.data
        request = None if corrected.in_answer_to is None else self._find_request(corrected.in_answer_to)
        if request is None or not corrections.answers_request(corrected, request) or not request.is_open:
            self.write_tracked(event.tracking, lambda cur: None)
            return
        with domain_refusals():
            request.record_correction(
                correction_id=corrected.correction_id,
                agency=corrected.corrected_by,
                share_id=corrected.share_id,
                reason_code=corrected.reason_code,
                categories=tuple(corrected.categories),
            )
        if corrected.answer in ("granted", "partly_granted"):
            rest = self.vault.open(corrected.answer_reason)
            answer = corrections.answer_text(
                self.catalogue, corrected, rest if isinstance(rest, dict) else None
            )
            self._answer(request, corrected.corrected_by, answer.outcome, answer.reason, save=False)
        self._save_requests(request, tracking=event.tracking)

    def extend_citizen_request(self, command: ExtendCitizenRequest) -> CitizenRequestStatus:
        request = self._agencys_request(command.request_id, command.agency)
        reason = command.reason
        with domain_refusals():
            request.extend(
                agency=command.agency,
                until=command.until,
                reason=None
                if reason is None
                else self.seal(
                    KeyScope(request.case_id, request.subject), {"nl": reason.nl, "en": reason.en}
                ),
                today=local_date(datetime.now(UTC)),
            )
        self._save_requests(request)
        return CitizenRequestStatus.of(request)

    def list_citizen_requests(self, command: ListCitizenRequests) -> CitizenRequestList:
        """What the agency must still answer, soonest deadline first, the words sealed to it."""
        entries = []
        sealing = _Sealing(self, command.agency)
        rows = request_index.open_for(self.sql, command.agency)
        received = self._received_events([row.request_id for row in rows])
        for row in rows:
            sealed = sealing.text(
                getattr(received.get(row.request_id), "text", None), row.case_id, row.subject
            )
            entries.append(
                CitizenRequestForAgency(
                    **vars(CitizenRequestStatus.of(row)),
                    key_id=sealed.key_id,
                    sealed_text=sealed.sealed_text,
                    text_withheld=sealed.text_withheld,
                )
            )
        return CitizenRequestList(tuple(entries))

    # -- the law's clock ------------------------------------------------------------------------
    def escalate_requests(self, as_of: datetime) -> Escalation:
        """Reminds agencies of requests due within ``REMINDER_DAYS`` and marks those past their
        deadline overdue (the citizen is told, with the complaint route). Repeat-safe."""
        today = local_date(as_of)
        reminded = became_overdue = 0
        for request_id in request_index.to_escalate(self.sql, today, REMINDER_DAYS):
            request = self._find_request(request_id)
            if request is None:
                continue
            if request.escalate(today):
                became_overdue += 1
            elif request.remind(today):
                reminded += 1
            else:
                continue
            self._save_requests(request)
        return Escalation(reminded, became_overdue, request_index.count_overdue(self.sql))

    def overdue_requests(self) -> int:
        return int(request_index.count_overdue(self.sql))

    def _overdue_for_metrics(self) -> float:
        """The gauge's value when Prometheus scrapes: a store that cannot answer now is no
        number (NaN), not a failed scrape of every other metric."""
        try:
            return float(self.overdue_requests())
        except Exception:
            return float("nan")

    # -- what the relay tells agencies --------------------------------------------------------
    def inbox_messages(self, domain_event: object) -> list[OutgoingMessage]:
        """A request to the agency that must answer it (to every agency at the table for an
        objection or withdrawal, which took effect at once); reminders and overdue notices."""
        if isinstance(domain_event, CitizenRequest.CitizenRequestReceived):  # type: ignore[attr-defined]
            case = self.cases.get(domain_event.case_id)
            addressees = {domain_event.agency}
            if domain_event.kind in IMMEDIATE_KINDS and case is not None:
                addressees |= set(case.participants)
            return [
                request_received(
                    domain_event,
                    agency,
                    _Sealing(self, agency).text(
                        domain_event.text, domain_event.case_id, domain_event.subject
                    ),
                )
                for agency in sorted(addressees)
            ]
        if isinstance(domain_event, CitizenRequest.CitizenRequestReminded):  # type: ignore[attr-defined]
            return [request_due(domain_event, "reminder")]
        if isinstance(domain_event, CitizenRequest.CitizenRequestOverdue):  # type: ignore[attr-defined]
            return [request_due(domain_event, "overdue")]
        return []

    # -- helpers ------------------------------------------------------------------------------
    def _object_at_once(self, case: CaseView, request: CitizenRequest) -> ConsentRecord:
        """ "Stop discussing my case": the objection is lodged through the consent path."""
        record: ConsentRecord = self._consent_record(case, request.subject)
        if record.objection_id is None:
            record.lodge_objection(request.id, None, _acting(request))
            code = "objection_in_force"
        else:
            code = "objection_exists"
        self._answer(request, request.agency, "granted", self._platform_answer(code), save=False)
        return record

    def _object_to_agency_at_once(self, case: CaseView, request: CitizenRequest) -> ConsentRecord:
        """ "Stop sharing about me from or to this agency": in force at once through the consent
        record; the request stays open for that agency to answer (see ``answer_citizen_request``).
        One already in force for the agency answers this one at once."""
        record: ConsentRecord = self._consent_record(case, request.subject)
        if request.agency in record.agency_objections:
            code = "objection_to_agency_exists"
            self._answer(request, request.agency, "granted", self._platform_answer(code), save=False)
        else:
            record.object_to_agency(request.id, request.agency, _acting(request))
        return record

    def _name_of(self, details: Sealed | None) -> str | None:
        opened = self.vault.open(details) if details is not None else None
        name = opened.get("name") if isinstance(opened, dict) else None
        return str(name) if name else None

    def _agency_objection_of(self, request: CitizenRequest) -> ConsentRecord | None:
        """The consent record holding this request's objection to one agency's part, while that
        objection is in force; None for every other request."""
        if request.kind != "objection":
            return None
        return self._record_with_agency_objection(request.case_id, request.subject, request.id)

    def _agency_objection_in_force(self, case_id: UUID, subject: str, request_id: UUID) -> bool:
        return self._record_with_agency_objection(case_id, subject, request_id) is not None

    def _record_with_agency_objection(
        self, case_id: UUID, subject: str, request_id: UUID
    ) -> ConsentRecord | None:
        try:
            record: ConsentRecord = self.repository.get(consent_record_id(case_id, subject))
        except AggregateNotFoundError:
            return None
        return record if record.agency_objection_in_force(request_id) else None

    def _withdraw_consent_at_once(self, case: CaseView, request: CitizenRequest) -> ConsentRecord:
        record: ConsentRecord = self._consent_record(case, request.subject)
        if record.consents:
            record.withdraw_consent(recorded_by=_acting(request))
            outcome, code = "granted", "consent_withdrawn"
        else:
            outcome, code = "refused", "no_consent"
        self._answer(request, request.agency, outcome, self._platform_answer(code), save=False)
        return record

    @staticmethod
    def _platform_answer(code: str) -> dict[str, str]:
        text = request_answers()[code]
        return {"nl": text.nl, "en": text.en}

    def _answer(
        self: Any,
        request: CitizenRequest,
        agency: str,
        outcome: str,
        reason: dict[str, str],
        save: bool = True,
        nothing_shared: bool = False,
    ) -> None:
        with domain_refusals():
            request.answer(
                agency=agency,
                outcome=outcome,
                reason=self.seal(KeyScope(request.case_id, request.subject), reason),
                answered_at=datetime.now(UTC),
                nothing_shared=nothing_shared,
            )
        if save:
            self._save_requests(request)

    def _save_requests(self, *aggregates: Aggregate, tracking: Tracking | None = None) -> None:
        """The aggregates' events and the requests' rows in the index, in one transaction (with
        the tracking record of the event that made them, if one did)."""
        requests = [a for a in aggregates if isinstance(a, CitizenRequest)]

        def write(cur: Cursor) -> None:
            for request in requests:
                request_index.write_row(cur, _row_of(request))

        self.save_tracked(tracking, *aggregates, write=write)

    def _find_request(self, request_id: UUID) -> CitizenRequest | None:
        try:
            request: CitizenRequest = self.repository.get(request_id)
        except AggregateNotFoundError:
            return None
        return request if isinstance(request, CitizenRequest) else None

    def _citizens_case(self, case_id: UUID, subject: str, representative: str | None = None) -> CaseView:
        """The case if the citizen is one of its subjects (and, acting for a minor, is the
        minor's representative on record in it while the facts say minor); the same 404 whether
        or not it exists."""
        case: CaseView | None = self.cases.get(case_id)
        if case is None or subject not in case.subjects:
            raise NotFound("unknown_case", "you are not a data subject of a case with this id", "case_id")
        if representative is not None and not acts_for(case, subject, representative):
            raise NotFound("unknown_case", "you are not a data subject of a case with this id", "case_id")
        return case

    def _citizens_request(self, request_id: UUID, subject: str) -> CitizenRequest:
        """A request of ``subject``'s own, or of a minor ``subject`` represents in its case."""
        request = self._find_request(request_id)
        if request is not None and request.subject != subject:
            case = self.cases.get(request.case_id)
            if case is None or not acts_for(case, request.subject, subject):
                request = None
        if request is None:
            raise NotFound("unknown_request", "you have no request with this id", "request_id")
        return request

    def _agencys_request(self, request_id: UUID, agency: str) -> CitizenRequest:
        """A request this agency must answer; the same 404 for one of another agency's."""
        request = self._find_request(request_id)
        if request is None or request.agency != agency:
            raise NotFound(
                "unknown_request", "your agency has no citizen's request with this id", "request_id"
            )
        return request

    def rebuild_request_index(self) -> int:
        """Writes the requests' index again from the events alone; returns how many requests."""
        ids = []
        for notification in self.recorder.select_notifications(start=1, limit=10**9):
            if notification.topic.endswith(".CitizenRequestReceived"):
                ids.append(UUID(str(notification.originator_id)))
        rows = [_row_of(request) for request in map(self._find_request, ids) if request is not None]
        return request_index.rebuild(self.sql, rows)

    def _received_events(self, request_ids: list[UUID]) -> dict[UUID, Any]:
        """Each request's first event (its words, sealed): in one read where the store can."""
        recorder: Any = self.recorder
        if hasattr(recorder, "select_first_events"):
            stored = recorder.select_first_events(request_ids)
            return {i: self.mapper.to_domain_event(event) for i, event in stored.items()}
        return {i: next(iter(self.repository.event_store.get(i, lte=1))) for i in request_ids}

    def _view(self, row: request_index.RequestRow) -> CitizenRequestView:
        """A request as its citizen reads it: its row, and its history from its events (read
        once, not replayed into an aggregate)."""
        steps: list[RequestStep] = []
        text: Any = None
        purged = agency_named = False
        stored: Any = self.repository.event_store.get(row.request_id)
        for domain_event in stored:
            name = type(domain_event).__name__
            if name not in _STEPS:
                continue
            values = vars(domain_event)
            reason = self.vault.open(values.get("reason"))
            if reason is PURGED:
                purged, reason = True, None
            if name == "CitizenRequestCorrectionRecorded":
                reason = corrections.recorded_text(
                    self.catalogue, values["categories"], values["reason_code"]
                )
            if name == "CitizenRequestReceived":
                agency_named = bool(values.get("agency_named"))
                text = self.vault.open(values.get("text"))
                if text is PURGED:
                    purged, text = True, None
            steps.append(
                RequestStep(
                    step=_STEPS[name],
                    at=domain_event.timestamp,
                    due_on=values.get("due_on"),
                    outcome=values.get("outcome"),
                    reason=reason,
                    late=values.get("late"),
                    by="legal_representative" if values.get("representative") else None,
                )
            )
        in_force = None
        if row.kind == "objection" and agency_named:
            in_force = self._agency_objection_in_force(row.case_id, row.subject, row.request_id)
        return CitizenRequestView(
            **vars(CitizenRequestStatus.of(row)),
            text=text,
            purged=purged,
            steps=tuple(steps),
            objection_in_force=in_force,
        )


def _row_of(request: CitizenRequest) -> request_index.RequestRow:
    return request_index.RequestRow(
        request_id=request.id,
        case_id=request.case_id,
        subject=request.subject,
        agency=request.agency,
        kind=request.kind,
        status=request.status,
        due_on=request.due_on,
        received_at=request.received_at,
        extended=request.extended,
        reminded_for=request.reminded_for,
        submitted_by=submitted_by(request),
    )


class _Sealing:
    """The citizen's words (and their role in the case) sealed to one agency's current key, for
    a listing of many: the agency's key and each case's facts are read once."""

    def __init__(self, app: Any, agency: str):
        self.app = app
        self.key = app.agencies.current_key(agency)
        self.cases: dict[UUID, CaseView | None] = {}

    def text(self, sealed: Any, case_id: UUID, subject: str) -> SealedText:
        opened = self.app.vault.open(sealed)
        if opened is None:
            return SealedText(key_id=None, sealed_text=None)
        if opened is PURGED:
            return SealedText(key_id=None, sealed_text=None, text_withheld="purged")
        if self.key is None:
            return SealedText(key_id=None, sealed_text=None, text_withheld="no_key")
        if case_id not in self.cases:
            self.cases[case_id] = self.app.cases.get(case_id)
        case = self.cases[case_id]
        facts = case.subjects.get(subject) if case else None
        plaintext = {"text": opened, "subject": {"role": facts.role if facts else None}}
        return SealedText(
            key_id=self.key.key_id, sealed_text=seal_for(self.key.encryption_public_key, plaintext)
        )


class ConsentUseCases(CitizenRequestUseCases):
    """The use cases over consent's event store, which holds a ``ConsentRecord`` per subject and
    case and the ``SafetyOverride`` aggregates, with the facts about cases learnt from
    case_registration's events (``CaseFacts``) as a read model."""

    name = "consent"
    processings = {
        "ConsentGiven": Processing("consent recorded", "record-consent", actor="recorded_by"),
        "ConsentWithdrawn": Processing("consent withdrawal recorded", "record-consent", actor="recorded_by"),
        "ObjectionLodged": Processing("objection recorded", "record-objection", actor="recorded_by"),
        "ObjectionWithdrawn": Processing(
            "objection withdrawal recorded", "record-objection", actor="recorded_by"
        ),
        "ObjectionToAgencyLodged": Processing(
            "objection to an agency's part recorded", "record-objection", actor="recorded_by"
        ),
        "ObjectionToAgencyEnded": Processing(
            "objection to an agency's part ended", "record-objection", actor="ended_by"
        ),
        "SafetyOverrideRecorded": Processing(
            "safety override recorded", "record-safety-override", actor="recorded_by"
        ),
        "SafetyOverrideEnded": Processing(
            "safety override ended", "record-safety-override", actor="ended_by"
        ),
        **REQUEST_PROCESSINGS,
    }
    #: What its verifiable log holds (``shared.tlog``): the decisions the citizen's overview shows.
    logged_events = frozenset(
        {
            "ConsentGiven",
            "ConsentWithdrawn",
            "ObjectionLodged",
            "ObjectionWithdrawn",
            "ObjectionToAgencyLodged",
            "ObjectionToAgencyEnded",
            "SafetyOverrideRecorded",
            "SafetyOverrideEnded",
        }
    )

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)
        self.cases = RepresentedCaseFacts(self)
        self.agencies = AgencyRegistry.for_settings(settings)
        metrics.citizen_requests_overdue.set_function(self._overdue_for_metrics)

    # -- what agencies ask ------------------------------------------------------------------
    def give_consent(self, command: GiveConsent) -> ConsentRecorded:
        """Records the subject's specific consent: the case's purpose, known categories,
        recipients that take part in the case."""
        case = self._case_for(command.case_id, command.agency)
        subject = self._subject(case, command.subject, "subject_bsn")
        if command.purpose != case.purpose:
            raise InvalidRequest("purpose_mismatch", "consent must be for the purpose of the case", "purpose")
        self._check_scope(case, command.categories, command.recipients)
        record = self._consent_record(case, subject)
        with domain_refusals():
            record.give_consent(
                purpose=command.purpose,
                categories=command.categories,
                recipients=command.recipients,
                valid_until=command.valid_until,
                notice_version=command.notice_version,
                notice=self.seal(KeyScope(case.case_id, subject), command.notice_text),
                given_how=command.given_how,
                recorded_by=command.agency,
                today=datetime.now(UTC).date(),
            )
        self.save(record)
        return ConsentRecorded.of(record)

    def withdraw_consent(self, command: WithdrawConsent) -> ConsentRecorded:
        """Records that the subject withdrew every consent they gave in the case."""
        case = self._case_for(command.case_id, command.agency, open_only=False)
        record = self._consent_record(case, self._subject(case, command.subject, "subject_bsn"))
        self._change(record, lambda: record.withdraw_consent(recorded_by=command.agency))
        return ConsentRecorded.of(record)

    def lodge_objection(self, command: LodgeObjection) -> ObjectionStatus:
        """The subject's "stop discussing my case"; repeat-safe by ``objection_id``."""
        case = self._case_for(command.case_id, command.agency)
        subject = self._subject(case, command.subject, "subject_bsn")
        record = self._consent_record(case, subject)
        objection_id: UUID = command.objection_id or uuid4()
        reason = self.seal(KeyScope(case.case_id, subject), command.reason)
        self._change(record, lambda: record.lodge_objection(objection_id, reason, command.agency))
        return ObjectionStatus.of(record)

    def withdraw_objection(self, command: WithdrawObjection) -> ObjectionStatus:
        """Records that the subject withdrew their objection; repeat-safe by ``objection_id``."""
        case = self._case_for(command.case_id, command.agency, open_only=False)
        record = self._consent_record(case, self._subject(case, command.subject, "subject_bsn"))
        if record.objection_id is None and command.objection_id in record.withdrawn_objections:
            return ObjectionStatus.of(record)  # a repeated command changes nothing
        self._change(record, lambda: record.withdraw_objection(command.objection_id, command.agency))
        return ObjectionStatus.of(record)

    def record_safety_override(self, command: RecordSafetyOverride) -> SafetyOverrideStatus:
        """A professional's override of an objection for the safety of others; repeat-safe."""
        case = self._case_for(command.case_id, command.agency)
        override_id: UUID = command.override_id or uuid4()
        existing = self._find_override(override_id)
        if existing is not None:
            if existing.case_id != case.case_id:
                raise Conflict(
                    "override_exists", "an override with this id exists in another case", "override_id"
                )
            return SafetyOverrideStatus.of(existing)
        subjects = tuple(self._subject(case, subject, "subject_bsns") for subject in command.subjects)
        self._check_scope(case, command.categories, command.recipients)
        scope = KeyScope(case.case_id)
        deferral = command.deferral
        with domain_refusals():
            override = SafetyOverride.record(
                override_id=override_id,
                case_id=case.case_id,
                scope=OverrideScope(subjects, command.categories, command.recipients),
                ground=command.ground,
                grounds=self.catalogue.safety_override_grounds,
                reasons=self.seal(scope, command.reasons),
                recorded_by=Professional(command.agency, self.vault.seal(scope, command.function)),
                ends_on=command.ends_on,
                explanation=self.seal(scope, command.explanation),
                deferral=None
                if deferral is None
                else NoticeDeferral(self.seal(scope, deferral.reason), deferral.review_on),
                catalogue_version=self.catalogue.version,
                today=datetime.now(UTC).date(),
            )
        self.save(override)
        return SafetyOverrideStatus.of(override)

    def end_safety_override(self, command: EndSafetyOverride) -> SafetyOverrideStatus:
        """Ends a safety override before its end date; repeat-safe for an ended one."""
        override = self._find_override(command.override_id)
        if override is None:
            raise NotFound("unknown_override", "no safety override with this id", "override_id")
        self._case_for(override.case_id, command.agency, open_only=False)
        if override.ended:
            return SafetyOverrideStatus.of(override)  # a repeated command changes nothing
        reasons = self.catalogue.safety_override_end_reasons
        self._change(override, lambda: override.end(command.reason_code, reasons, command.agency))
        return SafetyOverrideStatus.of(override)

    # -- what other services' events change ---------------------------------------------------
    def record_case_event(self, event: ReceivedEvent[CaseEvent]) -> None:
        """A case registered, activated, stopped or resumed for a subject, a participant added
        or removed, a case closed: the facts the use cases above check against."""
        self.cases.apply(event)

    def record_records_purged(self, event: ReceivedEvent[RecordsPurged]) -> None:
        """A purge: the case's facts (or the subject's sealed details) go, and the purged keys
        leave this process's cache. A case left with nothing personal is deleted with the other
        cases its consumer's batch forgets, in one statement."""
        data = event.data

        def write(cur: Cursor) -> None:
            if data.complete:
                self.at_batch_end(cur, "forget purged cases", self.cases.forget_many, data.case_id)
            else:
                self.cases.forget_purged(cur, event)

        self.write_tracked(event.tracking, write)
        self.forget_keys(event)

    # -- the aggregates ---------------------------------------------------------------------
    def _find_override(self, override_id: UUID) -> SafetyOverride | None:
        try:
            override: SafetyOverride = self.repository.get(override_id)
        except AggregateNotFoundError:
            return None
        return override

    def _check_scope(self, case: CaseView, categories: tuple[str, ...], recipients: tuple[str, ...]) -> None:
        """Categories the catalogue knows, recipients that take part in the case."""
        for code in categories:
            if code not in self.catalogue.categories:
                raise InvalidRequest("unknown_category", f"unknown data category {code}", "categories")
        for agency in recipients:
            if not case.takes_part(agency):
                raise InvalidRequest(
                    "not_a_participant", f"{agency} does not take part in the case", "recipients"
                )

    def _subject(self, case: CaseView, subject: str, field: str) -> str:
        """The subject's pseudonym, once it is known to be a data subject of the case."""
        if subject not in case.subjects:
            raise InvalidRequest("not_a_subject", "this person is not a data subject of the case", field)
        return subject

    def _change(self, aggregate: Aggregate, change: Callable[[], object]) -> None:
        """Applies a change the domain may refuse, and saves it."""
        with domain_refusals():
            change()
        self.save(aggregate)

    def _case_for(self, case_id: UUID, agency: str, open_only: bool = True) -> CaseView:
        """The case, if the agency takes part in it (and, with ``open_only``, it is not closed)."""
        case = self.cases.get(case_id)
        if case is None:
            raise NotFound("unknown_case", "no case with this id (yet)", "case_id")
        if not case.takes_part(agency):
            raise NotAuthorised("not_a_participant", "your agency does not take part in this case", "agency")
        if open_only and not case.is_open:
            raise Conflict("case_not_open", f"the case is {case.status}", "case_id")
        return case

    def _consent_record(self, case: CaseView, subject: str) -> ConsentRecord:
        """The subject's record in the case; a new one if they have none yet."""
        try:
            record: ConsentRecord = self.repository.get(consent_record_id(case.case_id, subject))
        except AggregateNotFoundError:
            return ConsentRecord(case_id=case.case_id, subject=subject)
        return record
