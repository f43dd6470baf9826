"""Use cases of retention: the purge, legal holds and citizens' erasure requests; what other
services' events change in the schedule, and reading it.

The schedule is a projection of the event stream (``services.retention.schedule``); which
units a run purges is planned in ``services.retention.purge_plan``. Each use case takes its
command as the service loaded it (a frozen dataclass from ``shared.contracts.commands``) and
returns a small frozen result, never the aggregate.

A purge destroys one purge unit's key (``services.retention.domain``) and then records
``RecordsPurged``. Each step is idempotent: destroying a destroyed key changes nothing, and a
purge on record is not recorded twice. So a run interrupted anywhere is finished by the next.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, project_aggregate
from eventsourcing.persistence import IntegrityError

from services.retention.domain import CaseRetention, PurgeUnit, retention_id, unit_key
from services.retention.purge_plan import (
    PlannedPurge,
    PurgeOutcome,
    PurgeReport,
    PurgeResult,
    completes_case,
    due_purges,
)
from services.retention.schedule import PurgeOnRecord, RetentionSchedule, ScheduleEntry, UpstreamEvent
from shared import metrics
from shared.application import KetenApplication
from shared.casefacts import CaseFacts
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.commands import LiftLegalHold, PlaceLegalHold, RequestErasure
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.case_registration import CaseClosed, CaseRegistered, CaseResumed, CaseStopped
from shared.contracts.events.data_sharing import DataShared
from shared.db import Cursor
from shared.errors import Conflict, InvalidRequest, NotAuthorised, NotFound, domain_refusals
from shared.ldv import Processing

log = logging.getLogger(__name__)

#: Purge units taken together by ``purge_many`` (two transactions and one key statement each).
PURGE_BATCH = 200
#: Due cases planned together: their aggregates and units read in a few statements.
PLAN_CHUNK = 500


@dataclass(frozen=True)
class LegalHoldStatus:
    """What a legal hold command answers (``LegalHoldStatusSchema``): the hold, and whether it
    is ``in_force`` or ``lifted`` now."""

    case_id: UUID
    hold_id: UUID
    status: str


@dataclass(frozen=True)
class ErasureDecision:
    """What a citizen's erasure request answers (``ErasureDecisionSchema``): ``granted``,
    ``erased_already``, or ``refused`` with the reason's code, its words in the citizen's
    language and the article of the law it rests on."""

    case_id: UUID
    decision: str
    reason_code: str | None = None
    reason: str | None = None
    article: str | None = None


class _RecordsPurgedEvent(Protocol):
    """``CaseRetention.RecordsPurged`` as far as the schedule reads it. (eventsourcing's
    ``@event`` makes the class at run time, so the type checker knows it by this shape.)"""

    case_id: UUID
    record_kind: str
    subject: str | None
    complete: bool
    timestamp: datetime


def _purges_on_record(domain_events: Iterable[object]) -> list[PurgeOnRecord]:
    """Of retention's own events, the purges: the only ones that change the schedule."""
    purges = []
    for domain_event in domain_events:
        if type(domain_event).__name__ == "RecordsPurged":
            purged = cast(_RecordsPurgedEvent, domain_event)
            purges.append(
                PurgeOnRecord(
                    case_id=purged.case_id,
                    record_kind=purged.record_kind,
                    subject=purged.subject,
                    complete=purged.complete,
                    purged_at=purged.timestamp,
                )
            )
    return purges


class RetentionUseCases(KetenApplication):
    """The use cases over retention's event store, which holds a ``CaseRetention`` per case,
    and its read models: the schedule and the case facts it needs."""

    name = "retention"
    processings = {"RecordsPurged": Processing("records purged", "purge-records")}
    #: What its verifiable log holds (``shared.tlog``): the decisions the citizen's overview shows.
    logged_events = frozenset({"RecordsPurged", "ErasureGranted", "ErasureRefused"})

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)
        self.cases = CaseFacts(self)
        self.schedule = RetentionSchedule(self.sql, self.name, self.catalogue, self.cases)

    # -- what other services' events change ---------------------------------------------------
    def record_case_registered(self, event: ReceivedEvent[CaseRegistered]) -> None:
        self._learn(event)

    def record_case_closed(self, event: ReceivedEvent[CaseClosed]) -> None:
        self._learn(event)

    def record_case_stopped_or_resumed(self, event: ReceivedEvent[CaseStopped | CaseResumed]) -> None:
        self._learn(event)

    def record_data_shared(self, event: ReceivedEvent[DataShared]) -> None:
        self._learn(event)

    def _learn(self, event: ReceivedEvent[UpstreamEvent]) -> None:
        if not isinstance(event.data, DataShared):
            self.forget_in_batch(event.data.case_id)  # what the batch read of the case changes
        self.save_tracked(event.tracking, write=lambda cur: self.schedule.learn(cur, event))

    def rebuild_schedule(self, upstream: Iterable[ReceivedEvent[Any]]) -> None:
        """Rebuilds the schedule from case_registration's and data_sharing's events (in each
        source's order, registrations first) and retention's own events: nothing else."""
        own = [
            self.mapper.to_domain_event(notification)
            for notification in self.recorder.select_notifications(start=1, limit=10**9)
        ]
        self.schedule.rebuild(upstream, _purges_on_record(own))

    # -- reading the schedule ---------------------------------------------------------------------
    def schedule_for(self, case_id: UUID, agency: str | None = None) -> tuple[ScheduleEntry, ...]:
        """Each record of the case with its rule, due date and status (``on_hold`` while a
        legal hold suspends a due purge); for an agency, only if it takes part in the case. Once the
        case's records are purged its participants are gone too; the schedule, which holds
        nothing personal, stays readable to show that they were purged."""
        case = self.cases.get(case_id)
        if agency is not None and case is not None and not case.takes_part(agency):
            raise NotAuthorised("not_a_participant", "your agency does not take part in this case", "agency")
        return self.schedule.entries(case_id, on_hold=self._retention(case_id).on_hold)

    # -- purging ---------------------------------------------------------------------------------
    def plan_purge(self, as_of: datetime) -> list[PlannedPurge]:
        """The purge units due at ``as_of`` and not purged yet, case by case, case unit first."""
        plan = []
        due = self.schedule.cases_due(as_of)
        for start in range(0, len(due), PLAN_CHUNK):
            cases = due[start : start + PLAN_CHUNK]
            retentions, units = self._retentions(cases), self.schedule.units_of(cases)
            for case_id in cases:
                plan.extend(due_purges(retentions[case_id], units[case_id], as_of))
        metrics.purges_due.set(sum(1 for planned in plan if not planned.on_hold))
        return plan

    def purge_due(self, as_of: datetime | None = None) -> PurgeReport:
        """Purges everything due at ``as_of`` (now by default); what the timer runs."""
        plan = self.plan_purge(as_of or datetime.now(UTC))
        return PurgeReport.of(self.purge_many([planned.unit for planned in plan]))

    def purge_many(self, units: Sequence[PurgeUnit], batch: int | None = None) -> list[PurgeResult]:
        """Purges many units, ``batch`` at a time: the start of each on record in one
        transaction, their keys destroyed in one statement, what was purged on record in one
        transaction. A unit the batch cannot take as a whole (its case is on hold, or was purged
        or changed meanwhile) goes through ``purge`` on its own, with the same outcome."""
        results: list[PurgeResult] = []
        batch = batch or PURGE_BATCH
        for start in range(0, len(units), batch):
            results.extend(self._purge_batch(units[start : start + batch]))
        return results

    def _purge_batch(self, units: Sequence[PurgeUnit]) -> list[PurgeResult]:
        by_case: dict[UUID, list[PurgeUnit]] = {}
        for unit in units:
            by_case.setdefault(unit.case_id, []).append(unit)
        # Every case's aggregate and units read at once; a case changed after this read fails
        # the save below as a whole (its aggregate's version is taken), and goes on its own.
        loaded, units_of = self._retentions(list(by_case)), self.schedule.units_of(list(by_case))
        retentions, taken, alone = [], [], []
        for case_id, case_units in by_case.items():
            retention = loaded[case_id]
            if retention.on_hold or any(retention.is_purged(u) for u in case_units):
                alone.extend(case_units)
                continue
            all_units = units_of[case_id]
            done = set(retention.purged)
            for unit in case_units:
                retention.start_purge(unit)
                done.add(unit.key)
                complete = all(u.key in done for u in all_units)
                taken.append((retention, unit, complete))
            retentions.append(retention)
        try:
            if retentions:
                self._save(*retentions)  # on record first: no legal hold slips in meanwhile
                self.vault.shred_many(
                    [unit.scope for _, unit, _ in taken],
                    [unit.case_id for _, unit, complete in taken if complete],
                )
                for retention, unit, complete in taken:
                    retention.record_purge(
                        unit, reason="retention", catalogue_version=self.catalogue.version, complete=complete
                    )
                self._save(*retentions)
        except IntegrityError:
            # A legal hold or another purger changed a case meanwhile: each unit on its own
            # (started purges are finished, purged ones reported as such).
            return [self.purge(unit) for unit in units]
        results = []
        for _, unit, _ in taken:
            metrics.purges.labels(unit.record_kind).inc()
            results.append(PurgeResult(unit.case_id, unit.record_kind, PurgeOutcome.PURGED))
        log.info("purged %d unit(s) in one batch", len(taken))
        return results + [self.purge(unit) for unit in alone]

    def purge(self, unit: PurgeUnit, reason: str = "retention") -> PurgeResult:
        """Purges one unit: destroys its key, then records ``RecordsPurged``. Its outcome is
        ``purged``, ``held`` (a legal hold suspends it; recorded once) or ``already``."""
        for _attempt in range(3):
            retention = self._retention(unit.case_id)
            if retention.is_purged(unit):
                return PurgeResult(unit.case_id, unit.record_kind, PurgeOutcome.ALREADY)
            try:
                if retention.on_hold and unit.key not in retention.purging:
                    retention.suspend(unit)
                    self._save(retention)
                    return PurgeResult(unit.case_id, unit.record_kind, PurgeOutcome.HELD)
                # On record first, so that no legal hold slips in while the key is destroyed.
                retention.start_purge(unit)
                self._save(retention)
                complete = completes_case(retention, unit, self.schedule.units(unit.case_id))
                self._destroy_keys(unit, complete)
                retention.record_purge(
                    unit, reason=reason, catalogue_version=self.catalogue.version, complete=complete
                )
                self._save(retention)
            except IntegrityError:
                continue  # another purger or a legal hold changed this case meanwhile: look again
            metrics.purges.labels(unit.record_kind).inc()
            log.info(
                "purged %s of case %s (%s v%s, %s)",
                unit.record_kind,
                unit.case_id,
                unit.retention_class,
                unit.rule_version,
                reason,
            )
            return PurgeResult(unit.case_id, unit.record_kind, PurgeOutcome.PURGED)
        raise RuntimeError(f"could not record the purge of case {unit.case_id}: too much contention")

    def _destroy_keys(self, unit: PurgeUnit, complete: bool) -> None:
        self.vault.shred_scope(unit.scope)
        if complete:
            self.vault.shred(unit.case_id)  # any key left in the case, and its tombstone

    # -- legal holds ----------------------------------------------------------------------------
    def place_legal_hold(self, command: PlaceLegalHold) -> LegalHoldStatus:
        """Suspends every purge of the case; repeat-safe by ``hold_id``."""
        case_id = command.case_id
        self._check_participant(case_id, command.agency)
        if command.reason_code not in self.catalogue.legal_hold_reasons:
            raise InvalidRequest("unknown_reason", "not a reason for a legal hold", "reason_code")
        retention, units = self._retention(case_id), self.schedule.units(case_id)
        if units and all(retention.is_purged(u) for u in units):
            raise Conflict("records_purged", "the case's records were purged already", "case_id")
        hold_id = command.hold_id or uuid4()
        with domain_refusals():
            retention.place_hold(hold_id, command.agency, command.reason_code, command.reference)
        self._save(retention)
        return LegalHoldStatus(case_id, hold_id, "in_force")

    def lift_legal_hold(self, command: LiftLegalHold) -> LegalHoldStatus:
        """Lifts a hold; due purges go ahead at the next run."""
        case_id = command.case_id
        self._check_participant(case_id, command.agency)
        retention = self._retention(case_id)
        with domain_refusals():
            retention.lift_hold(command.hold_id, command.agency)
        self._save(retention)
        return LegalHoldStatus(case_id, command.hold_id, "lifted")

    def _check_participant(self, case_id: UUID, agency: str) -> None:
        case = self.cases.get(case_id)
        if case is None:
            if self.schedule.records(case_id):
                raise Conflict("records_purged", "the case's records were purged already", "case_id")
            raise NotFound("unknown_case", "no case with this id (yet)", "case_id")
        if not case.takes_part(agency):
            raise NotAuthorised("not_a_participant", "your agency does not take part in this case", "agency")

    # -- erasure at the citizen's request ----------------------------------------------------------
    def request_erasure(self, request: RequestErasure) -> ErasureDecision:
        """A subject asks that their records of a case be erased.

        Granted once the case has ended and no legal hold is in force: the subject's unit and
        the case's own records are purged at once, the same way a due purge is. Refused with a
        reason the citizen understands otherwise; either way the decision is on record.
        """
        case_id, subject = request.case_id, request.subject
        retention = self._retention(case_id)
        if unit_key(subject) in retention.purged:
            return ErasureDecision(case_id, "erased_already")
        units = {u.key: u for u in self.schedule.units(case_id)}
        mine = units.get(unit_key(subject))
        if mine is None:
            raise NotFound("unknown_case", "you are not a data subject of a case with this id", "case_id")
        case = self.cases.get(case_id)
        refusal = retention.erasure_refusal(case_ended=case is not None and case.has_ended)
        if refusal is not None:
            retention.refuse_erasure(subject, refusal)
            self._save(retention)
            reason = self.catalogue.erasure_refusals[refusal]
            return ErasureDecision(
                case_id,
                "refused",
                reason_code=refusal,
                reason=reason.label(request.language),
                article=reason.article,
            )
        retention.grant_erasure(subject)
        self._save(retention)
        for unit in (units[unit_key(None)], mine):
            self.purge(unit, reason="erasure")
        return ErasureDecision(case_id, "granted")

    # -- the aggregate ----------------------------------------------------------------------------
    def _retention(self, case_id: UUID) -> CaseRetention:
        try:
            return cast(CaseRetention, self.repository.get(retention_id(case_id)))
        except AggregateNotFoundError:
            return CaseRetention(case_id=case_id)

    def _retentions(self, case_ids: Sequence[UUID]) -> dict[UUID, CaseRetention]:
        """``_retention`` of many cases, their events read in one statement (PostgreSQL; one
        case at a time elsewhere)."""
        select_many = getattr(self.recorder, "select_events_of", None)
        if select_many is None:
            return {case_id: self._retention(case_id) for case_id in case_ids}
        stored = select_many([retention_id(case_id) for case_id in case_ids])
        found = {}
        for case_id in case_ids:
            events = stored.get(retention_id(case_id))
            aggregate = project_aggregate(None, map(self.mapper.to_domain_event, events)) if events else None
            found[case_id] = (
                cast(CaseRetention, aggregate) if aggregate is not None else CaseRetention(case_id=case_id)
            )
        return found

    def _save(self, *retentions: CaseRetention) -> None:
        """Saves the aggregates' new events and their effect on the schedule, together."""
        purges = [p for retention in retentions for p in _purges_on_record(retention.pending_events)]

        def write(cur: Cursor) -> None:
            if purges:
                self.schedule.record_purges(cur, purges)

        self.save_tracked(None, *retentions, write=write)
