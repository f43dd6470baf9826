"""The retention of a case's records: when they are due, legal holds, purges and erasure.

Pure domain. Personal data is sealed under a key per case and per subject in the case; a purge
destroys the key of one *purge unit*:
- the case unit (``case_records``): the case's own free text, under the case key; due a period
  after the case ends;
- one unit per subject (``share_records``): the subject's details, consent notices and the
  contents of every share about them, under the subject's key; due when the last of their shares
  is due, and never before the case unit.
The outcome and the facts of each share (who, with whom, on what ground, when) hold no personal
data in plaintext and are kept. ``CaseRetention`` keeps one case's holds, purges and erasure
decisions; every one of them is an event, so the record of what was destroyed, when and under
which rule outlives the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from shared.errors import DomainError, Refusal
from shared.sealed import KeyScope

RETENTION_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/case-retention")
CASE_UNIT = "case"


def retention_id(case_id: UUID) -> UUID:
    return uuid5(RETENTION_NAMESPACE, str(case_id))


def unit_key(subject: str | None) -> str:
    """How a purge unit is known within its case: the case unit, or a subject's."""
    return CASE_UNIT if subject is None else f"subject:{subject}"


class RetentionError(DomainError):
    """A retention rule (legal holds, the order of a purge) was broken."""

    code = "retention_rule"


class UnknownHoldError(RetentionError):
    code = "unknown_hold"
    refusal = Refusal.NOT_FOUND


class CaseOnHoldError(RetentionError):
    code = "legal_hold"
    refusal = Refusal.CONFLICT


class PurgeUnderWayError(RetentionError):
    code = "purge_under_way"
    refusal = Refusal.CONFLICT


@dataclass(frozen=True)
class ScheduledRecord:
    """One row of the retention schedule: a record, its rule and when it is due."""

    record_id: str
    record_kind: str
    subject: str | None
    recipient: str | None
    retention_class: str
    rule_version: int
    due_at: datetime | None  # None: not known yet (case running), or kept
    status: str  # open, scheduled, kept, on_hold, purged


@dataclass(frozen=True)
class PurgeUnit:
    """What one purge step destroys: the case's own key, or one subject's key in the case."""

    case_id: UUID
    subject: str | None
    record_kind: str
    record_ids: tuple[str, ...]
    recipients: tuple[str, ...]
    retention_class: str
    rule_version: int
    due_at: datetime | None

    @property
    def key(self) -> str:
        return unit_key(self.subject)

    @property
    def scope(self) -> KeyScope:
        return KeyScope(self.case_id, self.subject)

    def is_due(self, as_of: datetime) -> bool:
        return self.due_at is not None and self.due_at <= as_of


def purge_units(
    case_id: UUID, subjects: Iterable[str], records: Iterable[ScheduledRecord]
) -> list[PurgeUnit]:
    """Every purge unit of a case, the case unit first, each with its due date (None while the
    case runs, or when its records are kept)."""
    records = list(records)
    case_rows = [r for r in records if r.record_kind == "case_records"]
    if not case_rows:
        return []
    case_row = case_rows[0]
    units = [
        PurgeUnit(
            case_id=case_id,
            subject=None,
            record_kind="case_records",
            record_ids=(case_row.record_id,),
            recipients=(),
            retention_class=case_row.retention_class,
            rule_version=case_row.rule_version,
            due_at=case_row.due_at,
        )
    ]
    for subject in sorted(subjects):
        shares = [r for r in records if r.record_kind == "share_records" and r.subject == subject]
        dues = [case_row.due_at, *(r.due_at for r in shares)]
        due_at = None if any(d is None for d in dues) else max(d for d in dues if d is not None)
        latest = max(shares, key=lambda r: (r.due_at is not None, r.due_at), default=case_row)
        units.append(
            PurgeUnit(
                case_id=case_id,
                subject=subject,
                record_kind="share_records",
                record_ids=tuple(r.record_id for r in shares),
                recipients=tuple(sorted({r.recipient for r in shares if r.recipient})),
                retention_class=latest.retention_class,
                rule_version=latest.rule_version,
                due_at=due_at,
            )
        )
    return units


class CaseRetention(Aggregate):
    """The retention of one case's records: its legal holds, its purges and the erasure
    requests of its subjects."""

    @event("RetentionOpened")
    def __init__(self, case_id: UUID):
        self.case_id = case_id
        self.holds: dict[str, dict[str, str | None]] = {}
        self.purging: set[str] = set()  # unit keys whose purge has started
        self.purged: dict[str, str] = {}  # unit key -> why (retention, erasure)
        self.suspended: set[str] = set()

    @staticmethod
    def create_id(case_id: UUID) -> UUID:
        return retention_id(case_id)

    # -- legal holds ----------------------------------------------------------------------------
    @property
    def on_hold(self) -> bool:
        return bool(self.holds)

    def place_hold(self, hold_id: UUID, agency: str, reason_code: str, reference: str | None) -> None:
        """Suspends every purge of the case until the hold is lifted; repeat-safe by hold id.

        Too late once a purge has started: its keys may be gone already, and it will finish.
        """
        if str(hold_id) in self.holds:
            return
        if self.purging - set(self.purged):
            raise PurgeUnderWayError(
                "records of this case are being purged; the purge will finish", "case_id"
            )
        self._hold_placed(
            case_id=self.case_id,
            hold_id=hold_id,
            agency=agency,
            reason_code=reason_code,
            reference=reference,
        )

    @event("LegalHoldPlaced")
    def _hold_placed(
        self, case_id: UUID, hold_id: UUID, agency: str, reason_code: str, reference: str | None
    ) -> None:
        self.holds[str(hold_id)] = {"agency": agency, "reason_code": reason_code, "reference": reference}

    def lift_hold(self, hold_id: UUID, agency: str) -> None:
        if str(hold_id) not in self.holds:
            raise UnknownHoldError("no legal hold with this id is in force on the case", "hold_id")
        self._hold_lifted(case_id=self.case_id, hold_id=hold_id, agency=agency)

    @event("LegalHoldLifted")
    def _hold_lifted(self, case_id: UUID, hold_id: UUID, agency: str) -> None:
        self.holds.pop(str(hold_id), None)

    # -- purging --------------------------------------------------------------------------------
    def is_purged(self, unit: PurgeUnit) -> bool:
        return unit.key in self.purged

    def suspend(self, unit: PurgeUnit) -> None:
        """Records, once per unit and set of holds, that a due purge waits for a legal hold."""
        hold_ids = tuple(sorted(self.holds))
        mark = f"{unit.key}|{','.join(hold_ids)}"
        if not hold_ids or mark in self.suspended or self.is_purged(unit):
            return
        self._suspended(
            case_id=self.case_id,
            record_kind=unit.record_kind,
            subject=unit.subject,
            record_ids=unit.record_ids,
            due_at=unit.due_at,
            hold_ids=hold_ids,
            reason_codes=tuple(sorted({str(h["reason_code"]) for h in self.holds.values()})),
        )

    @event("PurgeSuspended")
    def _suspended(
        self,
        case_id: UUID,
        record_kind: str,
        subject: str | None,
        record_ids: tuple[str, ...],
        due_at: datetime | None,
        hold_ids: tuple[str, ...],
        reason_codes: tuple[str, ...],
    ) -> None:
        self.suspended.add(f"{unit_key(subject)}|{','.join(hold_ids)}")

    def start_purge(self, unit: PurgeUnit) -> None:
        """Commits to purging the unit before any key is destroyed: from now on no legal hold
        can be placed that the purge would ignore; an interrupted purge is finished next run."""
        if self.holds:
            raise CaseOnHoldError("a legal hold suspends every purge of this case")
        if unit.key in self.purging:
            return
        self._purge_started(case_id=self.case_id, subject=unit.subject, record_kind=unit.record_kind)

    @event("PurgeStarted")
    def _purge_started(self, case_id: UUID, subject: str | None, record_kind: str) -> None:
        self.purging.add(unit_key(subject))

    def record_purge(self, unit: PurgeUnit, *, reason: str, catalogue_version: str, complete: bool) -> bool:
        """Records that the unit's key was destroyed; False if that is on record already."""
        if unit.key not in self.purging:
            raise RetentionError("a purge is recorded only after it was started")
        if self.is_purged(unit):
            return False
        self._records_purged(
            case_id=self.case_id,
            scope="case" if unit.subject is None else "subject",
            subject=unit.subject,
            record_kind=unit.record_kind,
            record_ids=unit.record_ids,
            recipients=unit.recipients,
            retention_class=unit.retention_class,
            rule_version=unit.rule_version,
            catalogue_version=catalogue_version,
            due_at=unit.due_at,
            reason=reason,
            complete=complete,
        )
        return True

    @event("RecordsPurged")
    def _records_purged(
        self,
        case_id: UUID,
        scope: str,
        subject: str | None,
        record_kind: str,
        record_ids: tuple[str, ...],
        recipients: tuple[str, ...],
        retention_class: str,
        rule_version: int,
        catalogue_version: str,
        due_at: datetime | None,
        reason: str,
        complete: bool,
    ) -> None:
        self.purged[unit_key(subject)] = reason

    # -- erasure at the subject's request ----------------------------------------------------------
    def erasure_refusal(self, case_ended: bool) -> str | None:
        """Why the law does not allow erasure now (a reason code), or None when it does.

        Records a case still needs while it runs (the agencies' statutory task, AVG art.
        17(3)(b)) and records an ongoing procedure needs (AVG art. 17(3)(e)) are kept; once the
        case has ended its purpose is served and the subject's records may go.
        """
        if self.holds:
            return "legal_hold"
        if not case_ended:
            return "case_open"
        return None

    def refuse_erasure(self, subject: str, reason_code: str) -> None:
        self._erasure_refused(case_id=self.case_id, subject=subject, reason_code=reason_code)

    @event("ErasureRefused")
    def _erasure_refused(self, case_id: UUID, subject: str, reason_code: str) -> None:
        pass

    def grant_erasure(self, subject: str) -> None:
        if self.erasure_refusal(case_ended=True) is not None:
            raise CaseOnHoldError("a legal hold suspends every purge of this case")
        self._erasure_granted(case_id=self.case_id, subject=subject)

    @event("ErasureGranted")
    def _erasure_granted(self, case_id: UUID, subject: str) -> None:
        pass
