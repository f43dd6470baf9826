"""The case of a consultation table (casus) and the rules of its registration.

Pure domain: no nameko, no marshmallow, no crypto. Personal values (names, contact details,
free text) arrive already sealed; the rules here never need their plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared.catalogue import Catalogue
from shared.errors import DomainError, Refusal
from shared.sealed import Sealed

PARTICIPATION = ("attends", "represented", "informed_only")
SUBJECT_ROLES = ("citizen", "partner", "child", "parent", "family_member")


class CaseError(DomainError):
    """A registration rule was broken; ``code`` is stable, the message is for a professional."""

    code = "case_rule"


class InvalidCaseError(CaseError):
    code = "invalid_case"


class CaseNotOpenError(CaseError):
    code = "case_not_open"
    refusal = Refusal.CONFLICT


class NotAParticipantError(CaseError):
    code = "not_a_participant"
    refusal = Refusal.NOT_AUTHORISED


class CaseNotRegisteredError(CaseError):
    """Only a case that is registered and not yet active can be activated."""

    code = "case_not_registered"
    refusal = Refusal.CONFLICT


class ConsentNotFreeError(CaseError):
    """Consent is no valid ground for an agency the citizen depends on for help."""

    code = "consent_not_free"


@dataclass(frozen=True)
class DataSubject:
    """A person whose data the case is about, known by pseudonym; ``details`` (name, contact
    details, preferred channel and language) is sealed under the subject's own key."""

    pseudonym: str
    role: str
    minor: bool
    details: Sealed | None = None
    represented_by: str | None = None  # pseudonym of a parent or legal representative


@dataclass(frozen=True)
class Participant:
    """An agency at the table, with its role and its own legal ground for this purpose."""

    agency: str
    role: str
    legal_ground: str


@dataclass(frozen=True)
class AgreementLine:
    """The data agreement for one participant: categories it may bring and may receive."""

    agency: str
    bring: tuple[str, ...]
    receive: tuple[str, ...]


@dataclass(frozen=True)
class ContactPoint:
    """Whom the citizen can ask: an agency and a function there, never a person's own number.
    The function is free text a professional types (a name may end up in it), so it is sealed
    under the case's key; a case registered before it was sealed holds it as plain text."""

    agency: str
    function: Sealed | str


VALUE_TYPES = (DataSubject, Participant, AgreementLine, ContactPoint)


@dataclass(frozen=True, kw_only=True)
class Registration:
    """What a case is registered with; ``Case.register`` checks it against the catalogue."""

    table: str
    purpose: str
    description: Sealed | None
    subjects: tuple[DataSubject, ...]
    participants: tuple[Participant, ...]
    agreement: tuple[AgreementLine, ...]
    record_holder: str
    retention_class: str
    contact_point: ContactPoint
    participation: str
    informed_beforehand: bool
    registered_by: str


class Case(Aggregate):
    """A citizen's request for help or care discussed at a consultation table."""

    @event("CaseRegistered")
    def __init__(
        self,
        table: str,
        purpose: str,
        description: Sealed | None,
        subjects: tuple[DataSubject, ...],
        participants: tuple[Participant, ...],
        agreement: tuple[AgreementLine, ...],
        record_holder: str,
        retention_class: str,
        contact_point: ContactPoint,
        participation: str,
        informed_beforehand: bool,
        registered_by: str,
        catalogue_version: str,
    ):
        self.table = table
        self.purpose = purpose
        self.description = description
        self.subjects = tuple(subjects)
        self.participants = tuple(participants)
        self.agreement = tuple(agreement)
        self.record_holder = record_holder
        self.retention_class = retention_class
        self.contact_point = contact_point
        self.participation = participation
        self.informed_beforehand = informed_beforehand
        self.registered_by = registered_by
        self.status = "registered"
        self.outcome: str | None = None
        #: Subjects whose objection stopped the case for them, by pseudonym: the objection's id.
        self.stopped_for: dict[str, str] = {}
        self.activated = False

    @classmethod
    def register(cls, case_id: UUID, catalogue: Catalogue, registration: Registration) -> Case:
        """A new case, once its registration keeps the rules (``check_registration``)."""
        check_registration(catalogue, registration)
        details = {field.name: getattr(registration, field.name) for field in fields(registration)}
        return cls._create(
            cls.CaseRegistered,  # type: ignore[attr-defined]
            id=case_id,
            catalogue_version=catalogue.version,
            **details,
        )

    @property
    def agencies(self) -> tuple[str, ...]:
        return tuple(p.agency for p in self.participants)

    @property
    def is_open(self) -> bool:
        return self.status in ("registered", "active", "stopped")

    def check_participant(self, agency: str) -> None:
        if agency not in self.agencies:
            raise NotAParticipantError(f"agency {agency} does not take part in this case")

    def close(self, outcome: str, closed_by: str) -> None:
        """Closes the case with an outcome code (an outcome without personal data)."""
        self.check_participant(closed_by)
        if not self.is_open:
            raise CaseNotOpenError(f"the case is already {self.status}")
        self._closed(outcome=outcome, closed_by=closed_by)

    @event("CaseClosed")
    def _closed(self, outcome: str, closed_by: str) -> None:
        self.status = "closed"
        self.outcome = outcome

    def activate(self, activated_by: str) -> None:
        """The table starts work: from now on shares may be decided in the case."""
        self.check_participant(activated_by)
        if self.status != "registered":
            raise CaseNotRegisteredError(f"the case is {self.status}; only a registered case is activated")
        self._activated(activated_by=activated_by)

    @event("CaseActivated")
    def _activated(self, activated_by: str) -> None:
        self.status = "active"
        self.activated = True

    def stop_for(self, subject: str, objection_id: str) -> bool:
        """An objection stops the case for its subject; the case is ``stopped`` once every
        subject objected. False (nothing recorded) when there is nothing to stop."""
        if subject not in {s.pseudonym for s in self.subjects} or subject in self.stopped_for:
            return False
        if self.status == "closed":
            return False
        everyone = {s.pseudonym for s in self.subjects} <= {*self.stopped_for, subject}
        self._stopped(
            subject=subject, objection_id=objection_id, status="stopped" if everyone else self.status
        )
        return True

    @event("CaseStopped")
    def _stopped(self, subject: str, objection_id: str, status: str) -> None:
        self.stopped_for = {**self.stopped_for, subject: str(objection_id)}
        self.status = status

    def resume_for(self, subject: str, objection_id: str) -> bool:
        """The subject withdrew the objection: the case runs again for them."""
        if self.stopped_for.get(subject) != str(objection_id) or self.status == "closed":
            return False
        # A case stopped by everyone's objection was active before (only a running case is
        # discussed); one that was never activated stays registered.
        status = self.status
        if status == "stopped":
            status = "active" if self.activated else "registered"
        self._resumed(subject=subject, objection_id=objection_id, status=status)
        return True

    @event("CaseResumed")
    def _resumed(self, subject: str, objection_id: str, status: str) -> None:
        self.stopped_for = {k: v for k, v in self.stopped_for.items() if k != subject}
        self.status = status

    def add_participant(
        self,
        catalogue: Catalogue,
        participant: Participant,
        agreement: AgreementLine,
        reason: Sealed | None,
        added_by: str,
    ) -> None:
        """An agency joins the case with its own ground and its line of the data agreement."""
        self.check_participant(added_by)
        if not self.is_open:
            raise CaseNotOpenError(f"the case is {self.status}")
        if participant.agency in self.agencies:
            raise InvalidCaseError(f"agency {participant.agency} already takes part", "participant")
        check_participant_ground(catalogue, self.purpose, participant, "participant")
        if agreement.agency != participant.agency:
            raise InvalidCaseError("the agreement line must be the new participant's", "agreement")
        check_categories(catalogue, agreement)
        self._participant_added(
            participant=participant,
            agreement=agreement,
            reason=reason,
            added_by=added_by,
            catalogue_version=catalogue.version,
        )

    @event("ParticipantAdded")
    def _participant_added(
        self,
        participant: Participant,
        agreement: AgreementLine,
        reason: Sealed | None,
        added_by: str,
        catalogue_version: str,
    ) -> None:
        self.participants = (*self.participants, participant)
        self.agreement = (*self.agreement, agreement)

    def remove_participant(self, agency: str, reason: Sealed | None, removed_by: str) -> None:
        """An agency leaves the case; it can no longer share or receive in it."""
        self.check_participant(removed_by)
        self.check_participant(agency)
        if not self.is_open:
            raise CaseNotOpenError(f"the case is {self.status}")
        if agency in (self.record_holder, self.contact_point.agency):
            raise InvalidCaseError(
                "the record holder and the citizen's contact point cannot leave the case; "
                "close it or register the role elsewhere first",
                "participant",
            )
        self._participant_removed(agency=agency, reason=reason, removed_by=removed_by)

    @event("ParticipantRemoved")
    def _participant_removed(self, agency: str, reason: Sealed | None, removed_by: str) -> None:
        self.participants = tuple(p for p in self.participants if p.agency != agency)
        self.agreement = tuple(a for a in self.agreement if a.agency != agency)


def check_participant_ground(
    catalogue: Catalogue, purpose: str, participant: Participant, field: str
) -> None:
    """Each agency brings its own ground for the purpose; consent is none where the citizen
    depends on the agency for help (it would not be freely given)."""
    agency = catalogue.agencies.get(participant.agency)
    if agency is None:
        raise InvalidCaseError(f"unknown agency {participant.agency}", field)
    if participant.role not in catalogue.participant_roles:
        # Kept in the open with the case: a role the tables name, never words typed in.
        raise InvalidCaseError("unknown role: the catalogue's tables name the roles", field)
    allowed = agency.purposes.get(purpose, ())
    if participant.legal_ground not in allowed:
        raise InvalidCaseError(
            f"{agency.name} has no ground '{participant.legal_ground}' for purpose {purpose}", field
        )
    if participant.legal_ground == "consent" and agency.citizen_depends_on_it:
        others = [g for g in allowed if g != "consent"]
        raise ConsentNotFreeError(
            f"the citizen depends on {agency.name} for help, so consent is not freely given"
            + (f"; its ground for this purpose is {', '.join(others)}" if others else ""),
            field,
        )


def check_categories(catalogue: Catalogue, line: AgreementLine) -> None:
    for code in (*line.bring, *line.receive):
        if code not in catalogue.categories:
            raise InvalidCaseError(f"unknown data category {code}", "agreement")


def check_registration(catalogue: Catalogue, registration: Registration) -> None:
    """The rules a new case must satisfy against the catalogue; raises InvalidCaseError."""
    table = catalogue.tables.get(registration.table)
    if table is None:
        raise InvalidCaseError("unknown consultation table", "table")
    purpose = registration.purpose
    if purpose not in table.purposes:
        raise InvalidCaseError(f"purpose {purpose} is not a purpose of table {table.id}", "purpose")
    participants = registration.participants
    if not participants:
        raise InvalidCaseError("a case needs at least one participating agency", "participants")
    seen: set[str] = set()
    for participant in participants:
        agency = catalogue.agencies.get(participant.agency)
        if agency is None:
            raise InvalidCaseError(f"unknown agency {participant.agency}", "participants")
        if participant.agency in seen:
            raise InvalidCaseError(f"agency {participant.agency} is listed twice", "participants")
        seen.add(participant.agency)
        check_participant_ground(catalogue, purpose, participant, "participants")
    for line in registration.agreement:
        if line.agency not in seen:
            raise InvalidCaseError(f"agreement names {line.agency}, who is not a participant", "agreement")
        check_categories(catalogue, line)
    if registration.record_holder not in seen:
        raise InvalidCaseError("the record holder must be a participating agency", "record_holder")
    if registration.contact_point.agency not in seen:
        raise InvalidCaseError("the contact point must be a participating agency", "contact_point")
    if registration.registered_by not in seen:
        raise NotAParticipantError("the registering agency must take part in the case")
    if registration.retention_class not in catalogue.retention_classes:
        raise InvalidCaseError("unknown retention class", "retention_class")
    if registration.participation not in PARTICIPATION:
        raise InvalidCaseError(f"participation is one of {', '.join(PARTICIPATION)}", "participation")
    subjects = registration.subjects
    if not any(s.role == "citizen" for s in subjects):
        raise InvalidCaseError("a case is about at least one citizen", "subjects")
    pseudonyms = [s.pseudonym for s in subjects]
    if len(set(pseudonyms)) != len(pseudonyms):
        raise InvalidCaseError("a data subject is listed twice", "subjects")
    for subject in subjects:
        if subject.role not in SUBJECT_ROLES:
            raise InvalidCaseError(f"subject role is one of {', '.join(SUBJECT_ROLES)}", "subjects")
        if subject.represented_by and subject.represented_by not in pseudonyms:
            raise InvalidCaseError("a representative must be a data subject of the case", "subjects")
