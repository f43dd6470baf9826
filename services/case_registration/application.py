"""Use cases of case registration: register a case, close it."""

from __future__ import annotations

from typing import Any
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
)
from shared.application import KetenApplication
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.envelope import ReceivedEvent
from shared.errors import Conflict, InvalidRequest, NotFound, domain_refusals
from shared.pseudonym import pseudonymise
from shared.sealed import KeyScope


class CaseRegistration(KetenApplication):
    name = "case_registration"
    value_types = VALUE_TYPES

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)

    def register_case(self, command: dict[str, Any]) -> Case:
        """Registers a case from a loaded ``RegisterCaseSchema`` command (repeat-safe by case_id)."""
        case_id: UUID = command.get("case_id") or uuid4()
        existing = self._find(case_id)
        if existing is not None:
            if existing.registered_by != command["agency"]:
                raise Conflict(
                    "case_exists", "a case with this id was registered by another agency", "case_id"
                )
            return existing
        table = self.catalogue.tables.get(command["table"])
        if table is None:
            raise InvalidRequest("unknown_table", "unknown consultation table", "table")
        subjects = self._subjects(case_id, command["subjects"])
        participants = tuple(
            Participant(p["agency"], p["role"], p["legal_ground"]) for p in command["participants"]
        )
        agreement = self._agreement(command.get("agreement"), table.participants, participants)
        with domain_refusals():
            case = Case.register(
                case_id=case_id,
                catalogue=self.catalogue,
                table=table.id,
                purpose=command["purpose"],
                description=self.seal(KeyScope(case_id), command.get("description")),
                subjects=subjects,
                participants=participants,
                agreement=agreement,
                record_holder=command["record_holder"],
                retention_class=command.get("retention_class") or table.retention_class,
                contact_point=ContactPoint(**command["contact_point"]),
                participation=command["participation"],
                informed_beforehand=command["informed_beforehand"],
                registered_by=command["agency"],
            )
        try:
            self.save(case)
        except IntegrityError:
            return self.get_case(case_id)  # registered concurrently by the same request
        return case

    def close_case(self, case_id: UUID, agency: str, outcome: str) -> Case:
        case = self.get_case(case_id)
        with domain_refusals():
            case.close(outcome=outcome, closed_by=agency)
        self.save(case)
        return case

    def activate_case(self, case_id: UUID, agency: str) -> Case:
        """Starts the table's work on a registered case; repeat-safe for an active case."""
        case = self.get_case(case_id)
        if case.status == "active" and agency in case.agencies:
            return case  # a repeated command changes nothing
        self._apply(case, lambda: case.activate(activated_by=agency))
        return case

    def add_participant(self, command: dict[str, Any]) -> Case:
        """An agency joins the case with its role, its own ground and its agreement line (by
        default the table's standard line for it)."""
        case = self.get_case(command["case_id"])
        given = command["participant"]
        participant = Participant(given["agency"], given["role"], given["legal_ground"])
        line = command.get("agreement")
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
            agreement = AgreementLine(participant.agency, tuple(line["bring"]), tuple(line["receive"]))
        reason = self.seal(KeyScope(case.id), command["reason"])
        self._apply(
            case,
            lambda: case.add_participant(self.catalogue, participant, agreement, reason, command["agency"]),
        )
        return case

    def remove_participant(self, command: dict[str, Any]) -> Case:
        case = self.get_case(command["case_id"])
        reason = self.seal(KeyScope(case.id), command["reason"])
        self._apply(case, lambda: case.remove_participant(command["participant"], reason, command["agency"]))
        return case

    # -- learning from consent -------------------------------------------------------------
    def record_objection_lodged(self, event: ReceivedEvent) -> None:
        """An objection stops the case for its subject (``CaseStopped``), with the tracking."""
        data = event.data
        case = self._find(data["case_id"])
        changed = case is not None and case.stop_for(data["subject"], str(data["objection_id"]))
        self.save_tracked(event.tracking, *([case] if changed else []))

    def record_objection_withdrawn(self, event: ReceivedEvent) -> None:
        data = event.data
        case = self._find(data["case_id"])
        changed = case is not None and case.resume_for(data["subject"], str(data["objection_id"]))
        self.save_tracked(event.tracking, *([case] if changed else []))

    def _apply(self, case: Case, change: Any) -> None:
        with domain_refusals():
            change()
        self.save(case)

    def record_records_purged(self, event: ReceivedEvent) -> None:
        """Keeps no read model of its own: drops the purged keys it may have cached."""
        self.write_tracked(event.tracking, lambda cur: None)
        self.forget_keys(event)

    def get_case(self, case_id: UUID) -> Case:
        case = self._find(case_id)
        if case is None:
            raise NotFound("unknown_case", "no case with this id", "case_id")
        return case

    def _find(self, case_id: UUID) -> Case | None:
        try:
            return self.repository.get(case_id)
        except AggregateNotFoundError:
            return None

    def _subjects(self, case_id: UUID, raw: list[dict[str, Any]]) -> tuple[DataSubject, ...]:
        secret = self.settings.pseudonym_secret
        subjects = []
        for subject in raw:
            pseudonym = pseudonymise(subject["bsn"], secret)
            details = {
                "name": subject["name"],
                "email": subject.get("email"),
                "postal_address": subject.get("postal_address"),
                "channel": subject.get("preferred_channel", "portal"),
                "language": subject.get("language", "nl"),
            }
            represented_by = subject.get("represented_by_bsn")
            subjects.append(
                DataSubject(
                    pseudonym=pseudonym,
                    role=subject["role"],
                    minor=bool(subject.get("minor")),
                    details=self.vault.seal(KeyScope(case_id, pseudonym), details),
                    represented_by=pseudonymise(represented_by, secret) if represented_by else None,
                )
            )
        return tuple(subjects)

    @staticmethod
    def _agreement(
        raw: list[dict[str, Any]] | None,
        standard: dict[str, Any],
        participants: tuple[Participant, ...],
    ) -> tuple[AgreementLine, ...]:
        if raw is not None:
            return tuple(AgreementLine(a["agency"], tuple(a["bring"]), tuple(a["receive"])) for a in raw)
        # The table's standard agreement, for the agencies that take part in this case.
        return tuple(
            AgreementLine(p.agency, standard[p.agency].bring, standard[p.agency].receive)
            for p in participants
            if p.agency in standard
        )
