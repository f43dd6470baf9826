"""Planning a purge run: which purge units are due, which a legal hold suspends, whether a
purge leaves nothing personal of its case, and what a run did in all.

Pure: it works on a case's ``CaseRetention`` and its purge units as the schedule gives them;
the use cases (``services.retention.application``) load those, destroy keys and save.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from services.retention.domain import CaseRetention, PurgeUnit


@dataclass(frozen=True)
class PlannedPurge:
    """A purge unit that is due, and whether a legal hold suspends it. What a dry run lists of
    it (ids, kinds, counts, dates and rules) holds nothing personal."""

    unit: PurgeUnit
    on_hold: bool

    @property
    def case_id(self) -> UUID:
        return self.unit.case_id

    @property
    def record_kind(self) -> str:
        return self.unit.record_kind

    @property
    def records(self) -> int:
        """How many records the purge destroys: each share record of a subject, or the case's."""
        return len(self.unit.record_ids) if self.unit.subject else 1

    @property
    def due_on(self) -> date | None:
        return self.unit.due_at.date() if self.unit.due_at else None

    @property
    def rule(self) -> str:
        unit = self.unit
        return f"{unit.retention_class}/{unit.record_kind} v{unit.rule_version}"


def due_purges(retention: CaseRetention, units: Iterable[PurgeUnit], as_of: datetime) -> list[PlannedPurge]:
    """The case's units due at ``as_of`` and not purged yet, in the order given (case unit first)."""
    return [
        PlannedPurge(unit, retention.on_hold)
        for unit in units
        if unit.is_due(as_of) and not retention.is_purged(unit)
    ]


def completes_case(retention: CaseRetention, unit: PurgeUnit, units: Sequence[PurgeUnit]) -> bool:
    """Whether purging ``unit`` leaves nothing personal of its case: every other unit of the
    case is purged already."""
    done = set(retention.purged) | {unit.key}
    return all(u.key in done for u in units)


class PurgeOutcome(StrEnum):
    PURGED = "purged"
    HELD = "held"  # a legal hold suspends it (recorded once)
    ALREADY = "already"  # purged on an earlier run


@dataclass(frozen=True)
class PurgeResult:
    """What one purge step did to one unit."""

    case_id: UUID
    record_kind: str
    outcome: PurgeOutcome


@dataclass(frozen=True)
class PurgeReport:
    """What a purge run did in all: units purged (and of which kind), held, purged already."""

    purged: int = 0
    held: int = 0
    already: int = 0
    by_kind: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, results: Iterable[PurgeResult]) -> PurgeReport:
        outcomes: Counter[PurgeOutcome] = Counter()
        by_kind: Counter[str] = Counter()
        for result in results:
            outcomes[result.outcome] += 1
            if result.outcome is PurgeOutcome.PURGED:
                by_kind[result.record_kind] += 1
        return cls(
            purged=outcomes[PurgeOutcome.PURGED],
            held=outcomes[PurgeOutcome.HELD],
            already=outcomes[PurgeOutcome.ALREADY],
            by_kind=dict(by_kind),
        )
