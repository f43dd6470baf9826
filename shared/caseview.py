"""What is known of a case outside case_registration: plain values the domain rules can read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shared.sealed import Sealed


@dataclass(frozen=True)
class SubjectFacts:
    pseudonym: str
    role: str
    minor: bool
    details: Sealed | None
    represented_by: str | None


@dataclass(frozen=True)
class ParticipantFacts:
    """An agency at the case's table: its role and its own legal ground."""

    role: str
    legal_ground: str


@dataclass(frozen=True)
class AgreementFacts:
    """What the case's data agreement lets one agency bring and receive (category codes)."""

    bring: tuple[str, ...] = ()
    receive: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContactPointFacts:
    """Whom the citizen asks about the case: an agency and a function there. The function is
    sealed (None once purged before it was kept); plain text only where it was kept before it
    was sealed."""

    agency: str
    function: Sealed | str | None


@dataclass(frozen=True)
class CaseView:
    case_id: UUID
    status: str
    table: str
    purpose: str
    participants: dict[str, ParticipantFacts]  # by agency
    agreement: dict[str, AgreementFacts]  # by agency
    subjects: dict[str, SubjectFacts]
    record_holder: str
    retention_class: str
    contact_point: ContactPointFacts
    registered_at: datetime
    ended_at: datetime | None
    outcome: str | None
    #: Subjects whose objection stopped the case for them.
    stopped_for: frozenset[str] = frozenset()

    @property
    def is_open(self) -> bool:
        """Not closed: registered, active, or stopped (by objection, which may be withdrawn)."""
        return self.status in ("registered", "active", "stopped")

    @property
    def has_ended(self) -> bool:
        """Closed, or stopped by every subject's objection: its records' time is counting."""
        return self.status in ("closed", "stopped")

    def takes_part(self, agency: str) -> bool:
        return agency in self.participants
