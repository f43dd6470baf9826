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
    CaseError,
    ContactPoint,
    DataSubject,
    Participant,
)
from shared.application import KetenApplication
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.envelope import ReceivedEvent
from shared.errors import Conflict, InvalidRequest, NotAuthorised, NotFound
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
        try:
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
        except CaseError as error:
            raise _translate(error) from None
        try:
            self.save(case)
        except IntegrityError:
            return self.get_case(case_id)  # registered concurrently by the same request
        return case

    def close_case(self, case_id: UUID, agency: str, outcome: str) -> Case:
        case = self.get_case(case_id)
        try:
            case.close(outcome=outcome, closed_by=agency)
        except CaseError as error:
            raise _translate(error) from None
        self.save(case)
        return case

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


def _translate(error: CaseError) -> Exception:
    if error.code == "not_a_participant":
        return NotAuthorised(error.code, str(error), error.field)
    if error.code == "case_not_open":
        return Conflict(error.code, str(error), error.field)
    return InvalidRequest(error.code, str(error), error.field)
