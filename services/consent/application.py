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
from datetime import UTC, datetime
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from services.consent.domain import (
    ConsentRecord,
    NoticeDeferral,
    OverrideScope,
    Professional,
    SafetyOverride,
    consent_record_id,
)
from shared.application import KetenApplication
from shared.casefacts import CaseEvent, CaseFacts
from shared.caseview import CaseView
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.commands import (
    EndSafetyOverride,
    GiveConsent,
    LodgeObjection,
    RecordSafetyOverride,
    WithdrawConsent,
    WithdrawObjection,
)
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.retention import RecordsPurged
from shared.errors import Conflict, InvalidRequest, NotAuthorised, NotFound, domain_refusals
from shared.ldv import Processing
from shared.sealed import KeyScope


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


class ConsentUseCases(KetenApplication):
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
        "SafetyOverrideRecorded": Processing(
            "safety override recorded", "record-safety-override", actor="recorded_by"
        ),
        "SafetyOverrideEnded": Processing(
            "safety override ended", "record-safety-override", actor="ended_by"
        ),
    }

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)
        self.cases = CaseFacts(self)

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
        leave this process's cache."""
        self.cases.apply(event)

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
