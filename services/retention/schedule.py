"""The retention schedule: a projection of the event stream, and how it is read.

The schedule (``retention_records``) has one row per record: a case's own records, its outcome
and each share record, with the retention class, the rule and the version of it that applied,
when the period started, when it is due and whether it was purged. It is learnt from
case_registration's and data_sharing's events and from retention's own purges, and can be
rebuilt from them alone. Beside it, the case facts (``retention_case_facts``) say which
retention class a case has and who its subjects and participants are; the schedule keeps them
up to date and forgets what a purge destroyed.

Every write here runs inside the caller's transaction (``cur``), which also holds the tracking
record of the event it learns from, or the events the use case saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.retention.domain import PurgeUnit, ScheduledRecord, purge_units
from shared.casefacts import CaseFacts
from shared.catalogue import Catalogue, RetentionClass, RetentionVersion
from shared.contracts.envelope import ReceivedEvent, carries
from shared.contracts.events.case_registration import CaseClosed, CaseRegistered, CaseResumed, CaseStopped
from shared.contracts.events.data_sharing import DataShared
from shared.db import Cursor, SqlStore

#: Cases (or purges) read or written by one statement of a batch.
CHUNK = 500

#: The events of other services the schedule learns from.
UpstreamEvent = CaseRegistered | CaseClosed | CaseStopped | CaseResumed | DataShared

COLUMNS = (
    "record_id",
    "case_id",
    "record_kind",
    "subject",
    "recipient",
    "retention_class",
    "rule_version",
    "catalogue_version",
    "counted_from",
    "due_at",
    "status",
    "purged_at",
)


@dataclass(frozen=True)
class ScheduleEntry:
    """One record of a case as an agency reads the schedule (``ScheduleEntrySchema``): nothing
    personal, so not whose record it is."""

    record_id: str
    case_id: UUID
    record_kind: str
    recipient: str | None
    retention_class: str
    rule_version: int
    catalogue_version: str
    counted_from: datetime | None
    due_at: datetime | None  # None: not known yet (case running), or kept
    status: str  # open, scheduled, kept, on_hold, purged
    purged_at: datetime | None

    @property
    def rule(self) -> str:
        return f"{self.retention_class}/{self.record_kind} v{self.rule_version}"


@dataclass(frozen=True)
class PurgeOnRecord:
    """What the schedule learns from one of retention's own ``RecordsPurged`` events."""

    case_id: UUID
    record_kind: str
    subject: str | None  # None: the case unit
    complete: bool  # nothing personal of the case is left
    purged_at: datetime


class RetentionSchedule:
    """The ``<app>_records`` table, kept with the case facts of the same application."""

    def __init__(self, sql: SqlStore, table_prefix: str, catalogue: Catalogue, cases: CaseFacts):
        self.sql = sql
        self.catalogue = catalogue
        self.cases = cases
        self.table = f"{table_prefix}_records"
        sql.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " record_id TEXT NOT NULL,"  # the case id, or the share id for a share record
                " case_id TEXT NOT NULL,"
                " record_kind TEXT NOT NULL,"  # case_records, share_records, outcome
                " subject TEXT,"  # share records: whose
                " recipient TEXT,"  # share records: the agency it went to
                " retention_class TEXT NOT NULL,"
                " rule_version INTEGER NOT NULL,"
                " catalogue_version TEXT NOT NULL,"
                " counted_from TEXT,"
                " due_at TEXT,"  # NULL: not yet known, or kept
                " status TEXT NOT NULL,"  # open, scheduled, kept, purged
                " purged_at TEXT,"
                " PRIMARY KEY (record_id, record_kind))",
                f"CREATE INDEX IF NOT EXISTS {self.table}_due ON {self.table} (status, due_at)",
                f"CREATE INDEX IF NOT EXISTS {self.table}_case ON {self.table} (case_id)",
            ]
        )

    # -- learning from other services' events -------------------------------------------------
    def learn(self, cur: Cursor, event: ReceivedEvent[UpstreamEvent]) -> None:
        """Applies one event of case_registration or data_sharing."""
        if carries(event, CaseRegistered):
            self._case_registered(cur, event)
        elif carries(event, CaseClosed):
            self._case_ended(cur, event, "closed")
        elif carries(event, CaseStopped) or carries(event, CaseResumed):
            self._case_stopped_or_resumed(cur, event)
        elif carries(event, DataShared):
            self._data_shared(cur, event)

    def _case_registered(self, cur: Cursor, event: ReceivedEvent[CaseRegistered]) -> None:
        data = event.data
        self.cases.record_registered(cur, event)
        version = self._class(data.retention_class).version_at(event.occurred_at)
        for kind, status in (("case_records", "open"), ("outcome", "kept")):
            self._upsert(
                cur,
                record_id=str(data.case_id),
                case_id=data.case_id,
                record_kind=kind,
                retention_class=data.retention_class,
                version=version,
                status=status,
            )

    def _case_stopped_or_resumed(
        self, cur: Cursor, event: ReceivedEvent[CaseStopped] | ReceivedEvent[CaseResumed]
    ) -> None:
        """A case stopped by every subject's objection has ended like a closed one: its records
        get their end date. Should an objection be withdrawn, the case runs again and its
        records wait for its end once more (unless they were purged meanwhile)."""
        case_id = event.data.case_id
        before = self.cases.get_in(cur, case_id)
        self.cases.record_change(cur, event)
        if carries(event, CaseStopped) and event.data.status == "stopped":
            self._case_ended(cur, event, "stopped")
        elif carries(event, CaseResumed) and before is not None and before.status == "stopped":
            cur.execute(
                f"UPDATE {self.table} SET counted_from = NULL, due_at = NULL, status = 'open'"
                " WHERE case_id = ? AND record_kind = 'case_records' AND status = 'scheduled'",
                (str(case_id),),
            )

    def _case_ended(
        self, cur: Cursor, event: ReceivedEvent[CaseClosed] | ReceivedEvent[CaseStopped], status: str
    ) -> None:
        data = event.data
        case_id = data.case_id
        outcome = data.outcome if isinstance(data, CaseClosed) else None
        self.cases.record_ended(cur, case_id, status, event.occurred_at, outcome)
        retention_class = self._retention_class_in(cur, case_id)
        if retention_class is None:
            return
        version = self._class(retention_class).version_at(event.occurred_at)
        for kind in ("case_records", "outcome"):
            due = version.rules[kind].due(event.occurred_at)
            self._upsert(
                cur,
                record_id=str(case_id),
                case_id=case_id,
                record_kind=kind,
                retention_class=retention_class,
                version=version,
                counted_from=event.occurred_at,
                due_at=due,
                status="scheduled" if due else "kept",
            )

    def _data_shared(self, cur: Cursor, event: ReceivedEvent[DataShared]) -> None:
        data = event.data
        retention_class = self._retention_class_in(cur, data.case_id)
        if retention_class is None:
            return
        version = self._class(retention_class).version_at(event.occurred_at)
        due = version.rules["share_records"].due(event.occurred_at)
        self._upsert(
            cur,
            record_id=str(data.share_id),
            case_id=data.case_id,
            record_kind="share_records",
            subject=data.subject,
            recipient=data.to_agency,
            retention_class=retention_class,
            version=version,
            counted_from=event.occurred_at,
            due_at=due,
            status="scheduled" if due else "kept",
        )

    def _upsert(
        self,
        cur: Cursor,
        *,
        record_id: str,
        case_id: UUID,
        record_kind: str,
        retention_class: str,
        version: RetentionVersion,
        status: str,
        subject: str | None = None,
        recipient: str | None = None,
        counted_from: datetime | None = None,
        due_at: datetime | None = None,
    ) -> None:
        cur.execute(
            f"INSERT INTO {self.table} ({', '.join(COLUMNS)})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
            " ON CONFLICT (record_id, record_kind) DO UPDATE SET"
            " retention_class = excluded.retention_class, rule_version = excluded.rule_version,"
            " catalogue_version = excluded.catalogue_version, counted_from = excluded.counted_from,"
            " due_at = excluded.due_at, status = excluded.status",
            (
                record_id,
                str(case_id),
                record_kind,
                subject,
                recipient,
                retention_class,
                version.version,
                self.catalogue.version,
                _iso(counted_from),
                _iso(due_at),
                status,
            ),
        )

    def _class(self, code: str) -> RetentionClass:
        retention_class = self.catalogue.retention_classes.get(code)
        if retention_class is None:
            # A case registered under a class a later catalogue dropped: a catalogue error, loud.
            raise RuntimeError(f"retention class {code} is not in catalogue {self.catalogue.version}")
        return retention_class

    def _retention_class_in(self, cur: Cursor, case_id: UUID) -> str | None:
        # Read once per consumer batch: the case's events drop it (``RetentionUseCases._learn``).
        case = self.cases.app.read_once_per_batch(("case", case_id), lambda: self.cases.get_in(cur, case_id))
        return None if case is None else case.retention_class

    # -- learning from retention's own events -------------------------------------------------
    def record_purge(self, cur: Cursor, purge: PurgeOnRecord) -> None:
        """Marks the purged records, and forgets what the purge destroyed of the case's facts.
        (Only purges change the schedule: whether a legal hold suspends a record is read from
        the case's ``CaseRetention`` when the schedule is read.)"""
        if purge.subject is None:
            cur.execute(
                f"UPDATE {self.table} SET status = 'purged', purged_at = ?"
                " WHERE case_id = ? AND record_kind = ?",
                (_iso(purge.purged_at), str(purge.case_id), purge.record_kind),
            )
        else:
            cur.execute(
                f"UPDATE {self.table} SET status = 'purged', purged_at = ?"
                " WHERE case_id = ? AND record_kind = ? AND subject = ?",
                (_iso(purge.purged_at), str(purge.case_id), purge.record_kind, purge.subject),
            )
        if purge.complete:
            self.cases.forget(cur, purge.case_id)
        elif purge.subject is not None:
            self.cases.forget_subject(cur, purge.case_id, purge.subject)

    def record_purges(self, cur: Cursor, purges: Sequence[PurgeOnRecord]) -> None:
        """``record_purge`` of many purges (a batch purge) in a statement per ``CHUNK`` of them,
        and the case facts of the cases left with nothing personal deleted at once."""
        for start in range(0, len(purges), CHUNK):
            chunk = purges[start : start + CHUNK]
            # Each row: the case, the kind, the subject (None: the case unit, every subject's
            # rows of that kind) and when it was purged; as ``record_purge`` marks them.
            values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
            cur.execute(
                f"UPDATE {self.table} SET status = 'purged', purged_at = v.column4"
                f" FROM (VALUES {values}) AS v"
                f" WHERE {self.table}.case_id = v.column1 AND {self.table}.record_kind = v.column2"
                f" AND (v.column3 IS NULL OR {self.table}.subject = v.column3)",
                [
                    value
                    for purge in chunk
                    for value in (
                        str(purge.case_id),
                        purge.record_kind,
                        purge.subject,
                        _iso(purge.purged_at),
                    )
                ],
            )
        complete = {purge.case_id for purge in purges if purge.complete}
        for purge in purges:
            if not purge.complete and purge.subject is not None and purge.case_id not in complete:
                self.cases.forget_subject(cur, purge.case_id, purge.subject)
        self.cases.forget_many(cur, sorted(complete, key=str))

    # -- rebuilding -----------------------------------------------------------------------------
    def rebuild(self, upstream: Iterable[ReceivedEvent[Any]], own_purges: Iterable[PurgeOnRecord]) -> None:
        """Forgets everything and learns it again: the other services' events (in each
        source's order, registrations first), then retention's own purges. Events the schedule
        does not follow are passed over."""
        with self.sql.transaction() as cur:
            cur.execute(f"DELETE FROM {self.table}")
            cur.execute(f"DELETE FROM {self.cases.table}")
            for event in upstream:
                if isinstance(event.data, UpstreamEvent):
                    self.learn(cur, event)
            for purge in own_purges:
                self.record_purge(cur, purge)

    # -- reading ---------------------------------------------------------------------------------
    def entries(self, case_id: UUID, on_hold: bool = False) -> tuple[ScheduleEntry, ...]:
        """Each record of the case, by kind and id; ``on_hold`` shows scheduled records as
        suspended by a legal hold."""
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT {', '.join(COLUMNS)} FROM {self.table}"
                " WHERE case_id = ? ORDER BY record_kind, record_id",
                (str(case_id),),
            ).fetchall()
        entries = []
        for row in rows:
            record = dict(zip(COLUMNS, row, strict=True))
            status = str(record["status"])
            entries.append(
                ScheduleEntry(
                    record_id=str(record["record_id"]),
                    case_id=UUID(record["case_id"]),
                    record_kind=str(record["record_kind"]),
                    recipient=record["recipient"],
                    retention_class=str(record["retention_class"]),
                    rule_version=int(record["rule_version"]),
                    catalogue_version=str(record["catalogue_version"]),
                    counted_from=_moment(record["counted_from"]),
                    due_at=_moment(record["due_at"]),
                    status="on_hold" if on_hold and status == "scheduled" else status,
                    purged_at=_moment(record["purged_at"]),
                )
            )
        return tuple(entries)

    def records(self, case_id: UUID) -> list[ScheduledRecord]:
        """The case's rows as the domain reads them (whose each share record is included)."""
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                "SELECT record_id, record_kind, subject, recipient, retention_class, rule_version,"
                f" due_at, status FROM {self.table} WHERE case_id = ?",
                (str(case_id),),
            ).fetchall()
        return [_scheduled(row) for row in rows]

    def units(self, case_id: UUID) -> list[PurgeUnit]:
        """Every purge unit of the case, the case unit first (none for an unknown case)."""
        facts = self.cases.get(case_id)
        records = self.records(case_id)
        subjects = set(facts.subjects) if facts else set()
        # A subject purged already is no longer in the facts' details, but still a subject.
        subjects |= {r.subject for r in records if r.subject}
        return purge_units(case_id, subjects, records)

    def units_of(self, case_ids: Sequence[UUID]) -> dict[UUID, list[PurgeUnit]]:
        """``units`` of many cases, in a statement or two per ``CHUNK`` of them instead of two
        per case (a batch purge, a plan)."""
        facts = self.cases.get_many(case_ids)
        records: dict[UUID, list[ScheduledRecord]] = {case_id: [] for case_id in case_ids}
        keys = [str(case_id) for case_id in case_ids]
        with self.sql.transaction(commit=False) as cur:
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                rows = cur.execute(
                    "SELECT case_id, record_id, record_kind, subject, recipient, retention_class,"
                    f" rule_version, due_at, status FROM {self.table}"
                    f" WHERE case_id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for row in rows:
                    records[UUID(row[0])].append(_scheduled(row[1:]))
        units = {}
        for case_id, case_records in records.items():
            case = facts.get(case_id)
            subjects = set(case.subjects) if case else set()
            subjects |= {r.subject for r in case_records if r.subject}
            units[case_id] = purge_units(case_id, subjects, case_records)
        return units

    def cases_due(self, as_of: datetime) -> list[UUID]:
        """The cases with a scheduled record due at ``as_of``, by id."""
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT DISTINCT case_id FROM {self.table}"
                " WHERE status = 'scheduled' AND due_at <= ? ORDER BY case_id",
                (_iso(as_of),),
            ).fetchall()
        return [UUID(row[0]) for row in rows]


def _scheduled(row: Any) -> ScheduledRecord:
    """A record as the domain reads it, from the columns ``records`` selects."""
    return ScheduledRecord(
        record_id=row[0],
        record_kind=row[1],
        subject=row[2],
        recipient=row[3],
        retention_class=row[4],
        rule_version=int(row[5]),
        due_at=_moment(row[6]),
        status=row[7],
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _moment(stored: str | None) -> datetime | None:
    return datetime.fromisoformat(stored) if stored else None
