"""Use cases of case registration: register a case, activate it, add and remove participants,
close it; and what other services' events change in it (an objection stops the case for its
subject, a purge drops cached keys).

Each use case takes its command as the service loaded it (a frozen dataclass from
``shared.contracts.commands``, BSNs already pseudonyms) and returns a ``CaseStatus``, never the
aggregate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.case_registration.domain import (
    VALUE_TYPES,
    AgreementLine,
    Case,
    ContactPoint,
    DataSubject,
    Participant,
    Registration,
)
from shared.application import KetenApplication
from shared.catalogue import Catalogue, TableParticipant, load_catalogue
from shared.config import Settings
from shared.contracts.catalogue import PublishedCatalogue
from shared.contracts.commands import (
    ActivateCase,
    AddParticipant,
    CloseCase,
    GetCatalogue,
    RegisterCase,
    RemoveParticipant,
)
from shared.contracts.commands.case_registration import AgreementInput, SubjectInput
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.consent import ObjectionLodged, ObjectionWithdrawn
from shared.contracts.events.retention import RecordsPurged
from shared.errors import Conflict, InvalidRequest, NotFound, domain_refusals
from shared.sealed import KeyScope


@dataclass(frozen=True)
class CaseStatus:
    """What a use case answers: the case it was about and its status after it (the reply's
    ``CaseStatusSchema``)."""

    case_id: UUID
    status: str

    @classmethod
    def of(cls, case: Case) -> CaseStatus:
        return cls(case.id, case.status)


class CaseRegistrationUseCases(KetenApplication):
    """The use cases over case_registration's event store, which holds the ``Case`` aggregates
    (and no read model: the other services keep what they need of a case themselves)."""

    name = "case_registration"
    value_types = VALUE_TYPES

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)

    # -- what agencies ask ------------------------------------------------------------------
    def register_case(self, command: RegisterCase) -> CaseStatus:
        """Registers a case at a table; repeat-safe by ``case_id`` (for the agency that chose it)."""
        case_id = command.case_id or uuid4()
        existing = self._find(case_id)
        if existing is not None:
            if existing.registered_by != command.agency:
                raise Conflict(
                    "case_exists", "a case with this id was registered by another agency", "case_id"
                )
            return CaseStatus.of(existing)
        table = self.catalogue.tables.get(command.table)
        if table is None:
            raise InvalidRequest("unknown_table", "unknown consultation table", "table")
        participants = tuple(Participant(p.agency, p.role, p.legal_ground) for p in command.participants)
        registration = Registration(
            table=table.id,
            purpose=command.purpose,
            description=self.seal(KeyScope(case_id), command.description),
            subjects=self._subjects(case_id, command.subjects),
            participants=participants,
            agreement=_agreement(command.agreement, table.participants, participants),
            record_holder=command.record_holder,
            retention_class=command.retention_class or table.retention_class,
            contact_point=ContactPoint(
                command.contact_point.agency,
                self.vault.seal(KeyScope(case_id), command.contact_point.function),
            ),
            participation=command.participation,
            informed_beforehand=command.informed_beforehand,
            registered_by=command.agency,
        )
        with domain_refusals():
            case = Case.register(case_id, self.catalogue, registration)
        try:
            self.save(case)
        except IntegrityError:
            return CaseStatus.of(self._case(case_id))  # registered concurrently by the same request
        return CaseStatus.of(case)

    def get_catalogue(self, command: GetCatalogue) -> PublishedCatalogue:
        """The catalogue this service decides by, as agencies read it; any agency may ask."""
        return PublishedCatalogue.of(self.catalogue)

    def activate_case(self, command: ActivateCase) -> CaseStatus:
        """Starts the table's work on a registered case; repeat-safe for an active case."""
        case = self._case(command.case_id)
        if case.status == "active" and command.agency in case.agencies:
            return CaseStatus.of(case)  # a repeated command changes nothing
        return self._change(case, lambda: case.activate(activated_by=command.agency))

    def add_participant(self, command: AddParticipant) -> CaseStatus:
        """An agency joins the case with its role, its own ground and its agreement line (by
        default the table's standard line for it)."""
        case = self._case(command.case_id)
        given = command.participant
        participant = Participant(given.agency, given.role, given.legal_ground)
        line = command.agreement
        if line is None:
            standard = self.catalogue.tables[case.table].participants.get(participant.agency)
            if standard is None:
                raise InvalidRequest(
                    "agreement_required",
                    "this agency has no standard line at the table: state what it brings and receives",
                    "agreement",
                )
            agreement = AgreementLine(participant.agency, standard.bring, standard.receive)
        else:
            agreement = AgreementLine(participant.agency, line.bring, line.receive)
        reason = self.seal(KeyScope(case.id), command.reason)
        return self._change(
            case, lambda: case.add_participant(self.catalogue, participant, agreement, reason, command.agency)
        )

    def remove_participant(self, command: RemoveParticipant) -> CaseStatus:
        """An agency leaves the case; it can no longer share or receive in it."""
        case = self._case(command.case_id)
        reason = self.seal(KeyScope(case.id), command.reason)
        return self._change(
            case, lambda: case.remove_participant(command.participant, reason, command.agency)
        )

    def close_case(self, command: CloseCase) -> CaseStatus:
        """Closes the case with an outcome code."""
        case = self._case(command.case_id)
        return self._change(case, lambda: case.close(outcome=command.outcome, closed_by=command.agency))

    # -- what other services' events change ---------------------------------------------------
    def record_objection_lodged(self, event: ReceivedEvent[ObjectionLodged]) -> None:
        """An objection stops the case for its subject (``CaseStopped``), with the tracking."""
        data = event.data
        case = self._find(data.case_id)
        changed = case is not None and case.stop_for(data.subject, str(data.objection_id))
        self.save_tracked(event.tracking, *([case] if changed else []))

    def record_objection_withdrawn(self, event: ReceivedEvent[ObjectionWithdrawn]) -> None:
        """A withdrawn objection resumes the case for its subject (``CaseResumed``)."""
        data = event.data
        case = self._find(data.case_id)
        changed = case is not None and case.resume_for(data.subject, str(data.objection_id))
        self.save_tracked(event.tracking, *([case] if changed else []))

    def record_records_purged(self, event: ReceivedEvent[RecordsPurged]) -> None:
        """Keeps no read model of its own: drops the purged keys it may have cached."""
        self.write_tracked(event.tracking, lambda cur: None)
        self.forget_keys(event)

    # -- the aggregates ---------------------------------------------------------------------
    def _change(self, case: Case, change: Callable[[], None]) -> CaseStatus:
        """Applies a change the domain may refuse, saves it, and answers the status after it."""
        with domain_refusals():
            change()
        self.save(case)
        return CaseStatus.of(case)

    def _case(self, case_id: UUID) -> Case:
        case = self._find(case_id)
        if case is None:
            raise NotFound("unknown_case", "no case with this id", "case_id")
        return case

    def _find(self, case_id: UUID) -> Case | None:
        try:
            case: Case = self.repository.get(case_id)
        except AggregateNotFoundError:
            return None
        return case

    def _subjects(self, case_id: UUID, given: tuple[SubjectInput, ...]) -> tuple[DataSubject, ...]:
        """The subjects as the case keeps them: by pseudonym, their name, contact details,
        channel and language sealed under their own key."""
        return tuple(
            DataSubject(
                pseudonym=subject.pseudonym,
                role=subject.role,
                minor=subject.minor,
                details=self.vault.seal(
                    KeyScope(case_id, subject.pseudonym),
                    {
                        "name": subject.name,
                        "email": subject.email,
                        "postal_address": subject.postal_address,
                        "channel": subject.preferred_channel,
                        "language": subject.language,
                    },
                ),
                represented_by=subject.represented_by,
            )
            for subject in given
        )


def _agreement(
    given: tuple[AgreementInput, ...] | None,
    standard: Mapping[str, TableParticipant],
    participants: tuple[Participant, ...],
) -> tuple[AgreementLine, ...]:
    """The agreement as given, or else the table's standard one for the agencies taking part."""
    if given is not None:
        return tuple(AgreementLine(a.agency, a.bring, a.receive) for a in given)
    return tuple(
        AgreementLine(p.agency, standard[p.agency].bring, standard[p.agency].receive)
        for p in participants
        if p.agency in standard
    )
