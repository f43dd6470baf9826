"""Use cases of retention: the schedule (a projection of the event stream), the purge, legal
holds and citizens' erasure requests.

The schedule (``retention_records``) has one row per record: a case's own records, its outcome
and each share record, with the retention class, the rule and the version of it that applied,
when the period started, when it is due and whether it was purged. It is learnt from
case_registration's and data_sharing's events and from retention's own (``RecordsPurged``,
``PurgeSuspended``, ``LegalHoldLifted``), and can be rebuilt from them alone.

A purge destroys one purge unit's key (``services.retention.domain``) and then records
``RecordsPurged``. Each step is idempotent: destroying a destroyed key changes nothing, and a
purge on record is not recorded twice. So a run interrupted anywhere is finished by the next.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.retention.domain import (
    CaseRetention,
    PurgeUnit,
    ScheduledRecord,
    purge_units,
    retention_id,
    unit_key,
)
from shared import metrics
from shared.application import KetenApplication
from shared.casefacts import CaseFacts
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.commands import LiftLegalHold, PlaceLegalHold, RequestErasure
from shared.contracts.envelope import ReceivedEvent, carries
from shared.contracts.events.case_registration import CaseClosed, CaseRegistered, CaseResumed, CaseStopped
from shared.contracts.events.data_sharing import DataShared
from shared.db import Cursor
from shared.errors import Conflict, InvalidRequest, NotAuthorised, NotFound, domain_refusals

log = logging.getLogger(__name__)

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
class PlannedPurge:
    """A purge unit that is due, and whether a legal hold suspends it."""

    unit: PurgeUnit
    on_hold: bool

    def describe(self) -> dict[str, Any]:
        """What a dry run lists: ids, kinds, counts, dates and rules; nothing personal."""
        unit = self.unit
        return {
            "case_id": str(unit.case_id),
            "record_kind": unit.record_kind,
            "records": len(unit.record_ids) if unit.subject else 1,
            "due_at": unit.due_at.isoformat() if unit.due_at else None,
            "rule": f"{unit.retention_class}/{unit.record_kind} v{unit.rule_version}",
            "on_hold": self.on_hold,
        }


@dataclass
class PurgeReport:
    purged: int = 0
    held: int = 0
    already: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Retention(KetenApplication):
    name = "retention"

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)
        self.cases = CaseFacts(self)
        self.records_table = f"{self.name}_records"
        self.sql.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {self.records_table} ("
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
                f"CREATE INDEX IF NOT EXISTS {self.records_table}_due"
                f" ON {self.records_table} (status, due_at)",
                f"CREATE INDEX IF NOT EXISTS {self.records_table}_case ON {self.records_table} (case_id)",
            ]
        )

    # -- the schedule: learning from the stream ---------------------------------------------------
    def record_case_registered(self, event: ReceivedEvent[CaseRegistered]) -> None:
        self.save_tracked(event.tracking, write=lambda cur: self._on_case_registered(cur, event))

    def record_case_closed(self, event: ReceivedEvent[CaseClosed]) -> None:
        self.save_tracked(event.tracking, write=lambda cur: self._on_case_ended(cur, event, "closed"))

    def record_case_stopped_or_resumed(self, event: ReceivedEvent[CaseStopped | CaseResumed]) -> None:
        self.save_tracked(event.tracking, write=lambda cur: self._on_stop_or_resume(cur, event))

    def record_data_shared(self, event: ReceivedEvent[DataShared]) -> None:
        self.save_tracked(event.tracking, write=lambda cur: self._on_data_shared(cur, event))

    def _on_stop_or_resume(self, cur: Cursor, event: ReceivedEvent[CaseStopped | CaseResumed]) -> None:
        """A case stopped by every subject's objection has ended like a closed one: its records
        get their end date. Should an objection be withdrawn, the case runs again and its
        records wait for its end once more (unless they were purged meanwhile)."""
        case_id = event.data.case_id
        before = self.cases.get_in(cur, case_id)
        self.cases.record_change(cur, event)
        if carries(event, CaseStopped) and event.data.status == "stopped":
            self._on_case_ended(cur, event, "stopped")
        elif carries(event, CaseResumed) and before is not None and before.status == "stopped":
            cur.execute(
                f"UPDATE {self.records_table} SET counted_from = NULL, due_at = NULL, status = 'open'"
                " WHERE case_id = ? AND record_kind = 'case_records' AND status = 'scheduled'",
                (str(case_id),),
            )

    def _on_case_registered(self, cur: Cursor, event: ReceivedEvent[CaseRegistered]) -> None:
        data = event.data
        self.cases.record_registered(cur, event)
        version = self._class(data.retention_class).version_at(event.occurred_at)
        for kind, status in (("case_records", "open"), ("outcome", "kept")):
            self._upsert(
                cur,
                record_id=data.case_id,
                case_id=data.case_id,
                record_kind=kind,
                retention_class=data.retention_class,
                rule_version=version.version,
                status=status,
            )

    def _on_case_ended(
        self, cur: Cursor, event: ReceivedEvent[CaseClosed | CaseStopped], status: str
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
                record_id=case_id,
                case_id=case_id,
                record_kind=kind,
                retention_class=retention_class,
                rule_version=version.version,
                counted_from=event.occurred_at,
                due_at=due,
                status="scheduled" if due else "kept",
            )

    def _on_data_shared(self, cur: Cursor, event: ReceivedEvent[DataShared]) -> None:
        data = event.data
        retention_class = self._retention_class_in(cur, data.case_id)
        if retention_class is None:
            return
        version = self._class(retention_class).version_at(event.occurred_at)
        due = version.rules["share_records"].due(event.occurred_at)
        self._upsert(
            cur,
            record_id=data.share_id,
            case_id=data.case_id,
            record_kind="share_records",
            subject=data.subject,
            recipient=data.to_agency,
            retention_class=retention_class,
            rule_version=version.version,
            counted_from=event.occurred_at,
            due_at=due,
            status="scheduled" if due else "kept",
        )

    def _upsert(
        self,
        cur: Cursor,
        *,
        record_id: Any,
        case_id: Any,
        record_kind: str,
        retention_class: str,
        rule_version: int,
        status: str,
        subject: str | None = None,
        recipient: str | None = None,
        counted_from: datetime | None = None,
        due_at: datetime | None = None,
    ) -> None:
        cur.execute(
            f"INSERT INTO {self.records_table} ({', '.join(COLUMNS)})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
            " ON CONFLICT (record_id, record_kind) DO UPDATE SET"
            " retention_class = excluded.retention_class, rule_version = excluded.rule_version,"
            " catalogue_version = excluded.catalogue_version, counted_from = excluded.counted_from,"
            " due_at = excluded.due_at, status = excluded.status",
            (
                str(record_id),
                str(case_id),
                record_kind,
                subject,
                recipient,
                retention_class,
                rule_version,
                self.catalogue.version,
                _iso(counted_from),
                _iso(due_at),
                status,
            ),
        )

    def _class(self, code: str) -> Any:
        retention_class = self.catalogue.retention_classes.get(code)
        if retention_class is None:
            # A case registered under a class a later catalogue dropped: a catalogue error, loud.
            raise RuntimeError(f"retention class {code} is not in catalogue {self.catalogue.version}")
        return retention_class

    def _retention_class_in(self, cur: Cursor, case_id: UUID) -> str | None:
        row = cur.execute(
            f"SELECT facts FROM {self.cases.table} WHERE case_id = ?", (str(case_id),)
        ).fetchone()
        return None if row is None else str(json.loads(row[0])["retention_class"])

    # -- the schedule: what retention itself recorded ---------------------------------------------
    def _project(self, cur: Cursor, domain_event: Any) -> None:
        """Applies one of retention's own events to the schedule (live and on a rebuild). Only
        purges change it: whether a legal hold suspends a record is read from the case's
        ``CaseRetention`` when the schedule is read."""
        case_id = str(getattr(domain_event, "case_id", ""))
        if type(domain_event).__name__ == "RecordsPurged":
            kind = domain_event.record_kind
            if domain_event.subject is None:
                cur.execute(
                    f"UPDATE {self.records_table} SET status = 'purged', purged_at = ?"
                    " WHERE case_id = ? AND record_kind = ?",
                    (_iso(domain_event.timestamp), case_id, kind),
                )
            else:
                cur.execute(
                    f"UPDATE {self.records_table} SET status = 'purged', purged_at = ?"
                    " WHERE case_id = ? AND record_kind = ? AND subject = ?",
                    (_iso(domain_event.timestamp), case_id, kind, domain_event.subject),
                )
            if domain_event.complete:
                self.cases.forget(cur, domain_event.case_id)
            elif domain_event.subject is not None:
                self.cases.forget_subject(cur, domain_event.case_id, domain_event.subject)

    def _save(self, retention: CaseRetention) -> None:
        """Saves the aggregate's new events and their effect on the schedule, together."""
        new_events = list(retention.pending_events)

        def write(cur: Cursor) -> None:
            for domain_event in new_events:
                self._project(cur, domain_event)

        self.save_tracked(None, retention, write=write)

    def rebuild_schedule(self, upstream: Iterable[ReceivedEvent[Any]]) -> None:
        """Rebuilds the schedule from case_registration's and data_sharing's events (in each
        source's order, registrations first) and retention's own events: nothing else."""
        own = [
            self.mapper.to_domain_event(notification)
            for notification in self.recorder.select_notifications(start=1, limit=10**9)
        ]
        with self.sql.transaction() as cur:
            cur.execute(f"DELETE FROM {self.records_table}")
            cur.execute(f"DELETE FROM {self.cases.table}")
            handlers: dict[str, Callable[[Cursor, ReceivedEvent[Any]], None]] = {
                "CaseRegistered": self._on_case_registered,
                "CaseClosed": lambda c, e: self._on_case_ended(c, e, "closed"),
                "CaseStopped": self._on_stop_or_resume,
                "CaseResumed": self._on_stop_or_resume,
                "DataShared": self._on_data_shared,
            }
            for event in upstream:
                handler = handlers.get(event.name)
                if handler is not None:
                    handler(cur, event)
            for domain_event in own:
                self._project(cur, domain_event)

    # -- reading the schedule -------------------------------------------------------------------
    def schedule_for(self, case_id: UUID, agency: str | None = None) -> list[dict[str, Any]]:
        """Each record of the case with its rule, due date and status (``on_hold`` while a
        legal hold suspends a due purge); for an agency, only if it takes part in the case. Once the
        case's records are purged its participants are gone too; the schedule, which holds
        nothing personal, stays readable to show that they were purged."""
        case = self.cases.get(case_id)
        if agency is not None and case is not None and not case.takes_part(agency):
            raise NotAuthorised("not_a_participant", "your agency does not take part in this case", "agency")
        held = self._retention(case_id).on_hold
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT {', '.join(COLUMNS)} FROM {self.records_table}"
                " WHERE case_id = ? ORDER BY record_kind, record_id",
                (str(case_id),),
            ).fetchall()
        result = []
        for row in rows:
            record = dict(zip(COLUMNS, row, strict=True))
            record.pop("subject")  # the pseudonym is of no use to an agency reading the schedule
            record["rule"] = f"{record['retention_class']}/{record['record_kind']} v{record['rule_version']}"
            if held and record["status"] == "scheduled":
                record["status"] = "on_hold"
            result.append(record)
        return result

    def _records(self, case_id: UUID) -> list[ScheduledRecord]:
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                "SELECT record_id, record_kind, subject, recipient, retention_class, rule_version,"
                f" due_at, status FROM {self.records_table} WHERE case_id = ?",
                (str(case_id),),
            ).fetchall()
        return [
            ScheduledRecord(
                record_id=row[0],
                record_kind=row[1],
                subject=row[2],
                recipient=row[3],
                retention_class=row[4],
                rule_version=int(row[5]),
                due_at=datetime.fromisoformat(row[6]) if row[6] else None,
                status=row[7],
            )
            for row in rows
        ]

    def _units(self, case_id: UUID) -> list[PurgeUnit]:
        facts = self.cases.get(case_id)
        records = self._records(case_id)
        subjects = set(facts.subjects) if facts else set()
        # A subject purged already is no longer in the facts' details, but still a subject.
        subjects |= {r.subject for r in records if r.subject}
        return purge_units(case_id, subjects, records)

    # -- purging ---------------------------------------------------------------------------------
    def plan_purge(self, as_of: datetime) -> list[PlannedPurge]:
        """The purge units due at ``as_of`` and not purged yet, case by case, case unit first."""
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT DISTINCT case_id FROM {self.records_table}"
                " WHERE status = 'scheduled' AND due_at <= ? ORDER BY case_id",
                (_iso(as_of),),
            ).fetchall()
        plan = []
        for (case_id,) in rows:
            retention = self._retention(UUID(case_id))
            for unit in self._units(UUID(case_id)):
                if unit.is_due(as_of) and not retention.is_purged(unit):
                    plan.append(PlannedPurge(unit, retention.on_hold))
        metrics.purges_due.set(sum(1 for p in plan if not p.on_hold))
        return plan

    def purge_due(self, as_of: datetime | None = None) -> PurgeReport:
        """Purges everything due at ``as_of`` (now by default); what the timer runs."""
        report = PurgeReport()
        for planned in self.plan_purge(as_of or datetime.now(UTC)):
            self.purge(planned.unit, report)
        return report

    def purge(self, unit: PurgeUnit, report: PurgeReport | None = None, reason: str = "retention") -> str:
        """Purges one unit: destroys its key, then records ``RecordsPurged``. Returns
        ``purged``, ``held`` (a legal hold suspends it; recorded once) or ``already``."""
        report = report or PurgeReport()
        for _attempt in range(3):
            retention = self._retention(unit.case_id)
            if retention.is_purged(unit):
                report.already += 1
                return "already"
            try:
                if retention.on_hold and unit.key not in retention.purging:
                    retention.suspend(unit)
                    self._save(retention)
                    outcome = "held"
                else:
                    # On record first, so that no legal hold slips in while the key is destroyed.
                    retention.start_purge(unit)
                    self._save(retention)
                    complete = self._completes(retention, unit)
                    self._destroy_keys(unit, complete)
                    retention.record_purge(
                        unit, reason=reason, catalogue_version=self.catalogue.version, complete=complete
                    )
                    self._save(retention)
                    outcome = "purged"
            except IntegrityError:
                continue  # another purger or a legal hold changed this case meanwhile: look again
            if outcome == "held":
                report.held += 1
            else:
                report.purged += 1
                report.by_kind[unit.record_kind] = report.by_kind.get(unit.record_kind, 0) + 1
                metrics.purges.labels(unit.record_kind).inc()
                log.info(
                    "purged %s of case %s (%s v%s, %s)",
                    unit.record_kind,
                    unit.case_id,
                    unit.retention_class,
                    unit.rule_version,
                    reason,
                )
            return outcome
        raise RuntimeError(f"could not record the purge of case {unit.case_id}: too much contention")

    def _completes(self, retention: CaseRetention, unit: PurgeUnit) -> bool:
        done = set(retention.purged) | {unit.key}
        return all(u.key in done for u in self._units(unit.case_id))

    def _destroy_keys(self, unit: PurgeUnit, complete: bool) -> None:
        self.vault.shred_scope(unit.scope)
        if complete:
            self.vault.shred(unit.case_id)  # any key left in the case, and its tombstone

    def _retention(self, case_id: UUID) -> CaseRetention:
        try:
            return self.repository.get(retention_id(case_id))
        except AggregateNotFoundError:
            return CaseRetention(case_id=case_id)

    # -- legal holds ----------------------------------------------------------------------------
    def place_legal_hold(self, command: PlaceLegalHold) -> UUID:
        """Suspends every purge of the case (``PlaceLegalHoldSchema``); returns the hold's id."""
        case_id = command.case_id
        self._check_participant(case_id, command.agency)
        if command.reason_code not in self.catalogue.legal_hold_reasons:
            raise InvalidRequest("unknown_reason", "not a reason for a legal hold", "reason_code")
        retention, units = self._retention(case_id), self._units(case_id)
        if units and all(retention.is_purged(u) for u in units):
            raise Conflict("records_purged", "the case's records were purged already", "case_id")
        hold_id = command.hold_id or uuid4()
        with domain_refusals():
            retention.place_hold(hold_id, command.agency, command.reason_code, command.reference)
        self._save(retention)
        return UUID(str(hold_id))

    def lift_legal_hold(self, command: LiftLegalHold) -> None:
        """Lifts a hold (``LiftLegalHoldSchema``); due purges go ahead at the next run."""
        case_id = command.case_id
        self._check_participant(case_id, command.agency)
        retention = self._retention(case_id)
        with domain_refusals():
            retention.lift_hold(command.hold_id, command.agency)
        self._save(retention)

    def _check_participant(self, case_id: UUID, agency: str) -> None:
        case = self.cases.get(case_id)
        if case is None:
            if self._records(case_id):
                raise Conflict("records_purged", "the case's records were purged already", "case_id")
            raise NotFound("unknown_case", "no case with this id (yet)", "case_id")
        if not case.takes_part(agency):
            raise NotAuthorised("not_a_participant", "your agency does not take part in this case", "agency")

    # -- erasure at the citizen's request ----------------------------------------------------------
    def request_erasure(self, request: RequestErasure) -> dict[str, Any]:
        """A subject asks that their records of a case be erased (``ErasureRequestSchema``).

        Granted once the case has ended and no legal hold is in force: the subject's unit and
        the case's own records are purged at once, the same way a due purge is. Refused with a
        reason the citizen understands otherwise; either way the decision is on record.
        """
        case_id, subject = request.case_id, request.subject
        retention = self._retention(case_id)
        if unit_key(subject) in retention.purged:
            return {"case_id": str(case_id), "decision": "erased_already"}
        units = {u.key: u for u in self._units(case_id)}
        mine = units.get(unit_key(subject))
        if mine is None:
            raise NotFound("unknown_case", "you are not a data subject of a case with this id", "case_id")
        case = self.cases.get(case_id)
        refusal = retention.erasure_refusal(case_ended=case is not None and case.has_ended)
        if refusal is not None:
            retention.refuse_erasure(subject, refusal)
            self._save(retention)
            reason = self.catalogue.erasure_refusals[refusal]
            return {
                "case_id": str(case_id),
                "decision": "refused",
                "reason_code": refusal,
                "reason": reason.label(request.language),
                "article": reason.article,
            }
        retention.grant_erasure(subject)
        self._save(retention)
        for unit in (units[unit_key(None)], mine):
            self.purge(unit, reason="erasure")
        return {"case_id": str(case_id), "decision": "granted"}


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None
