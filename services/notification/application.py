"""Use cases of the notification service: tell each subject of each share, hold the notice under
a deferral until a professional ends it, and keep the citizen's overview.

What each use case takes is typed (a command dataclass from ``shared.contracts.commands``, or an
event of another service as received); what it answers is a small frozen result, never an
aggregate. The parts it stands on have modules of their own: delivering what is due
(``delivery``), the overview's projection (``overview``) and how the citizen reads it
(``view``), and the channels a notice travels by (``channels``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import greenlet
from eventsourcing.application import AggregateNotFoundError, project_aggregate
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, StoredEvent

from services.notification.channels import EmailChannel, LetterChannel, Notice, NoticeTemplates
from services.notification.delivery import (
    Contact,
    DeferralDue,
    DeliveryQueue,
    Dispatcher,
    choose_channel,
)
from services.notification.domain import (
    Deferral,
    Notification,
    RequestStep,
    addressee_for,
    bundle_of,
    deferral_id,
    request_notice_id,
)
from services.notification.overview import CitizenOverview, SubjectRecords, told_after
from services.notification.view import Overview, Wording, notice_words, present, request_notice_words
from shared import metrics
from shared.application import KetenApplication, Tracking
from shared.casefacts import CaseFacts
from shared.caseview import CaseView
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.commands import EndDeferral, ExtendDeferral
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.case_registration import CaseClosed, CaseRegistered
from shared.contracts.events.consent import (
    CitizenRequestAnswered,
    CitizenRequestExtended,
    CitizenRequestOverdue,
    SafetyOverrideRecorded,
)
from shared.contracts.events.data_sharing import DataShared
from shared.contracts.events.retention import RecordsPurged
from shared.db import Cursor
from shared.errors import NotFound, domain_refusals
from shared.ldv import Processing
from shared.sealed import KeyScope, Sealed


@dataclass(frozen=True)
class Notified:
    """What telling of a share answers: the notification, its channel and its status
    (``scheduled``, ``deferred``, or ``delivered`` when the portal is the channel)."""

    notification_id: UUID
    channel: str
    status: str


@dataclass(frozen=True)
class EndedDeferral:
    """What ending a deferral answers (``DeferralStatusSchema``): how many held notifications
    go out now."""

    override_id: UUID
    released: int
    status: str = "ended"


@dataclass(frozen=True)
class ExtendedDeferral:
    """What extending a deferral answers (``DeferralStatusSchema``): the next review date."""

    override_id: UUID
    review_on: date
    status: str = "deferred"


#: The steps of a citizen's request they are told of, by the consent event that records each.
RequestEvent = CitizenRequestExtended | CitizenRequestAnswered | CitizenRequestOverdue
REQUEST_STEPS: dict[type, str] = {
    CitizenRequestExtended: "extended",
    CitizenRequestAnswered: "answered",
    CitizenRequestOverdue: "overdue",
}
#: A citizen reading their overview (or their copy of it).
OVERVIEW_READ = Processing("overview read by the subject", "citizen-overview")


class NotificationUseCases(KetenApplication):
    """The use cases over the notification service's store: it holds the ``Notification`` and
    ``Deferral`` aggregates, the delivery queue, the case facts and the citizens' overview."""

    name = "notification"
    value_types = (RequestStep,)
    processings = {
        "NotificationSent": Processing("subject notified", "notify-subject"),
        "NotificationDeferred": Processing("notice deferred", "defer-notification"),
    }
    #: What its verifiable log holds (``shared.tlog``): the decisions the citizen's overview shows.
    logged_events = frozenset({"NotificationSent", "DeferralStarted", "DeferralExtended", "DeferralEnded"})

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None) -> None:
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)
        self.cases = CaseFacts(self)
        self.overview = CitizenOverview(self)
        self.deliveries = DeliveryQueue(
            self, settings.notify_bundle_seconds, timedelta(seconds=settings.notify_stale_seconds)
        )
        self.templates = NoticeTemplates()
        self.email = EmailChannel(settings)
        self.letters = LetterChannel(settings)
        self.dispatcher = Dispatcher(
            self.deliveries,
            load=self._notifications,
            save=self._save_own,
            contact_of=self._addressee_contact,
            compose=self._notice,
            email=self.email,
            letters=self.letters,
            retry_base_seconds=settings.notify_retry_seconds,
            batch=settings.notify_batch,
            prepare=self._prepared_for_sending,
        )
        #: What a delivery group's sends read, read once for the group (``_prepared_for_sending``).
        self._sending: _Sending | None = None

    # -- what other services' events change -------------------------------------------------
    def learn(self, event: ReceivedEvent[Any]) -> None:
        """Records what an event of another service changes in the case facts and the
        overview (and starts a deferral an override asks for), with its tracking record, in one
        transaction."""
        data = event.data
        deferral = self._deferral_for(data) if isinstance(data, SafetyOverrideRecorded) else None

        def write(cur: Cursor) -> None:
            if isinstance(data, CaseRegistered):
                self.cases.record_registered(cur, event)
            elif isinstance(data, CaseClosed):
                self.cases.record_ended(cur, data.case_id, "closed", event.occurred_at, data.outcome)
            elif isinstance(data, RecordsPurged):
                if data.complete:  # with every case the consumer's batch forgets, at once
                    self.at_batch_end(cur, "forget purged cases", self.cases.forget_many, data.case_id)
                else:
                    self.cases.forget_purged(cur, event)
            self.overview.apply(cur, event)

        self.forget_in_batch(getattr(data, "case_id", None))
        self._save(event.tracking, *([deferral] if deferral else []), write=write)
        if isinstance(data, RecordsPurged):
            self.forget_keys(event)

    def _deferral_for(self, data: SafetyOverrideRecorded) -> Deferral | None:
        if data.deferral is None:
            return None
        reason = data.deferral.reason
        return Deferral(
            override_id=data.override_id,
            case_id=data.case_id,
            subjects=tuple(data.subjects),
            recorded_by=data.recorded_by.agency,
            review_on=data.deferral.review_on,
            reason=reason if isinstance(reason, Sealed) else None,
            categories=tuple(data.categories),
            recipients=tuple(data.recipients),
        )

    def notify_share(self, event: ReceivedEvent[DataShared]) -> Notified:
        """One notification per share and subject (the subject and everyone the content is also
        about), each on their own channel, recorded with the overview entries; held when the
        share was made under an override whose notice is deferred. Answers the subject's."""
        data = event.data
        # Read once for every subject of the share (and once per batch for its case).
        case, in_force = self._share_facts(data.case_id, _today())
        deferral = self._holding_deferral(data, in_force)
        notifications = [self._notification(event, subject, deferral, case) for subject in data.subjects]
        # The entries are written with what their notifications are now: no second write each.
        told = {n.subject: told_after(n.pending_events) for n in notifications}
        self._save(
            event.tracking,
            *notifications,
            write=lambda cur: self.overview.apply(cur, event, told=told),
            told_with_entries=True,
        )
        for notification in notifications:
            if notification.status == "delivered":
                metrics.notifications.labels("portal", "sent").inc()
        first = notifications[0]
        return Notified(first.id, first.channel, first.status)

    def _notification(
        self,
        event: ReceivedEvent[DataShared],
        subject: str,
        deferral: Deferral | None,
        case: CaseView | None,
    ) -> Notification:
        data = event.data
        facts = case.subjects.get(subject) if case else None
        addressee = addressee_for(subject, facts.minor, facts.represented_by) if facts else subject
        contact = self._contact_in(case, subject, addressee)
        notification = Notification(
            share_id=data.share_id,
            case_id=data.case_id,
            subject=subject,
            addressee=addressee,
            channel=choose_channel(contact, self.email.available),
            bundle=bundle_of(data.case_id, addressee, data.meeting_id, data.request_id),
            correlation_id=event.correlation_id,
            override_id=data.override_id,
            traceparent=event.traceparent,
        )
        if deferral is not None:
            notification.defer(override_id=deferral.override_id, review_on=deferral.review_on)
        elif notification.channel == "portal":
            notification.mark_sent()  # delivered by the overview entry, in the same transaction
        return notification

    def _holding_deferral(self, data: DataShared, in_force: Sequence[UUID]) -> Deferral | None:
        """The deferral that holds the share's notices, if one does: its own override's, or any
        of the case's ``in_force`` whose scope holds it, whether or not the subject objected."""
        today = _today()
        own = self._find_deferral(data.override_id)
        if own is not None and own.in_force(today):
            return own
        for override_id in in_force:
            deferral = self._find_deferral(override_id)
            if deferral is not None and deferral.holds(data.subjects, data.categories, data.to_agency, today):
                return deferral
        return None

    def notify_request(self, event: ReceivedEvent[RequestEvent]) -> Notified:
        """Tells the citizen (or a minor's representative) on their channel that a request of
        theirs was extended, answered or is overdue, with the complaint route; once per step."""
        data = event.data
        step = REQUEST_STEPS[type(data)]
        case = self._case(data.case_id)
        facts = case.subjects.get(data.subject) if case else None
        addressee = addressee_for(data.subject, facts.minor, facts.represented_by) if facts else data.subject
        contact = self._contact_in(case, data.subject, addressee)
        notice_id = request_notice_id(data.request_id, step)
        notification = Notification(
            share_id=notice_id,
            case_id=data.case_id,
            subject=data.subject,
            addressee=addressee,
            channel=choose_channel(contact, self.email.available),
            bundle=str(notice_id),  # one message per step, never bundled with shares
            correlation_id=event.correlation_id,
            request=RequestStep(
                request_id=data.request_id,
                kind=getattr(data, "kind", "") or "",
                step=step,
                agency=data.agency,
                due_on=getattr(data, "due_on", None),
                outcome=getattr(data, "outcome", None),
                reason=getattr(data, "reason", None),
                late=bool(getattr(data, "late", False)),
            ),
        )
        if notification.channel == "portal":
            notification.mark_sent()  # the page shows the request's history
        self._save(event.tracking, notification)
        return Notified(notification.id, notification.channel, notification.status)

    # -- a professional decides a deferral --------------------------------------------------
    def end_deferral(self, command: EndDeferral) -> EndedDeferral:
        """Ends a deferral: every notification held under the override goes out, explained.
        Only the agency that recorded the override decides."""
        deferral = self._deferral(command.override_id)
        with domain_refusals():
            deferral.end(command.agency)
        return EndedDeferral(command.override_id, released=self._release(deferral))

    def _release(self, deferral: Deferral) -> int:
        """Saves the deferral's end with every notification it held, released: each goes out
        with the override explained. Answers how many."""
        held = self._notifications(self.deliveries.held_under(deferral.override_id))
        for notification in held:
            notification.release()
        self._save(None, deferral, *held)
        return len(held)

    def lapse_deferrals(self, today: date | None = None) -> int:
        """Ends each deferral whose review date passed with nobody ending or extending it, and
        releases what it held: a notice waits no longer than the record says. Answers how many
        notifications were released."""
        today = today or _today()
        released = 0
        for override_id in self.deliveries.deferrals_lapsed(today):
            deferral = self._find_deferral(override_id)
            if deferral is not None and deferral.lapse(today):
                try:
                    released += self._release(deferral)
                except IntegrityError:
                    continue  # another replica's dispatcher recorded it first
        return released

    def extend_deferral(self, command: ExtendDeferral) -> ExtendedDeferral:
        """Keeps the notifications held until a later review date, with the reason (sealed)."""
        deferral = self._deferral(command.override_id)
        reason = self.vault.seal(KeyScope(deferral.case_id), command.reason)
        with domain_refusals():
            deferral.extend(command.agency, command.review_on, reason, _today())
        self._save(None, deferral)
        return ExtendedDeferral(command.override_id, review_on=command.review_on)

    def deferrals_due(self, agency: str, today: date | None = None) -> list[DeferralDue]:
        """The deferrals the agency recorded whose review date has come: a professional must
        end or extend each."""
        return self.deliveries.deferrals_due(agency, today or _today())

    def _find_deferral(self, override_id: UUID | None) -> Deferral | None:
        if override_id is None:
            return None
        try:
            deferral: Deferral = self.repository.get(deferral_id(override_id))
        except AggregateNotFoundError:
            return None
        return deferral

    def _deferral(self, override_id: UUID) -> Deferral:
        deferral = self._find_deferral(override_id)
        if deferral is None:
            raise NotFound("unknown_deferral", "no deferred notification under this safety override")
        return deferral

    # -- delivery -----------------------------------------------------------------------------
    def dispatch_due(self, now: datetime | None = None) -> int:
        """Sends every notification that is due, bundled per consultation and addressee;
        returns how many went out (``delivery.Dispatcher``)."""
        now = now or datetime.now(UTC)
        self.lapse_deferrals(now.date())
        sent = self.dispatcher.dispatch_due(now)
        metrics.deferrals_due.set(self.deliveries.count_deferrals_due(now.date()))
        return sent

    def dispatch_when_due(self) -> int:
        """The delivery timer's run: ``dispatch_due`` now, but only when something may be due
        (``DeliveryQueue.nothing_due``), so that an idle service does not query its store."""
        now = datetime.now(UTC)
        if not self.dispatcher.records_pending and self.deliveries.nothing_due(now):
            return 0
        changes = self.deliveries.changes
        sent = self.dispatch_due(now)
        self.deliveries.plan_next_look(now, changes)
        return sent

    def render_letters(self) -> int:
        """The pending letters as PDFs, handed to the printing service (``LetterChannel``)."""
        return self.letters.render_pending()

    def _notifications(self, ids: Iterable[UUID]) -> list[Notification]:
        """The notifications, as on record now: on PostgreSQL all their events in one statement."""
        wanted = list(ids)
        if not self.batches or len(wanted) <= 1:
            found: list[Notification] = [self.repository.get(notification_id) for notification_id in wanted]
            return found
        recorder: Any = self.recorder
        with self.sql.transaction(commit=False) as cur:
            cur.raw.execute(
                f"SELECT originator_id, originator_version, topic, state FROM {recorder.events_table}"
                " WHERE originator_id = ANY(%s::uuid[]) ORDER BY originator_id, originator_version",
                ([str(i) for i in wanted],),
            )
            rows = cur.raw.fetchall()
        events: dict[UUID, list[Any]] = {}
        for row in rows:
            originator_id = UUID(str(row[0]))
            stored = StoredEvent(
                originator_id=originator_id, originator_version=row[1], topic=row[2], state=bytes(row[3])
            )
            events.setdefault(originator_id, []).append(self.mapper.to_domain_event(stored))
        loaded: list[Notification] = []
        for notification_id in wanted:
            notification = project_aggregate(None, events.get(notification_id, ()))
            if not isinstance(notification, Notification):
                raise AggregateNotFoundError(f"Aggregate {notification_id!r} not found.")
            loaded.append(notification)
        return loaded

    def _contact(self, case_id: UUID, subject: str, addressee: str) -> Contact:
        """The addressee's contact details as registered (the representative's own if they are
        a subject of the case, else those given with the subject); none once purged."""
        sending = self._sending_here()
        case = sending.cases.get(case_id) if sending is not None else self.cases.get(case_id)
        return self._contact_in(case, subject, addressee)

    # -- reading once for many: a consumer's batch, a delivery group ----------------------------
    def _share_facts(self, case_id: UUID, today: date) -> tuple[CaseView | None, list[UUID]]:
        """The case's facts and its deferrals in force today, in one statement, once per
        consumer batch (every event of the batch that changes them drops what was read)."""

        def read() -> tuple[CaseView | None, list[UUID]]:
            with self.sql.transaction(commit=False) as cur:
                rows = cur.execute(
                    "SELECT 'case', case_id, status, facts, registered_at, ended_at, outcome"
                    f" FROM {self.cases.table} WHERE case_id = ?"
                    " UNION ALL SELECT 'deferral', override_id, NULL, NULL, NULL, NULL, NULL"
                    f" FROM {self.deliveries.deferrals_table}"
                    " WHERE case_id = ? AND ended = 0 AND review_on >= ?"
                    " ORDER BY 1, 2",
                    (str(case_id), str(case_id), today.isoformat()),
                ).fetchall()
            case = next((self.cases.view(tuple(row[1:])) for row in rows if row[0] == "case"), None)
            return case, [UUID(row[1]) for row in rows if row[0] == "deferral"]

        facts: tuple[CaseView | None, list[UUID]] = self.read_once_per_batch(("share", case_id), read)
        return facts

    def _case(self, case_id: UUID) -> CaseView | None:
        """The case's facts, read once per consumer batch (every event of the batch that
        changes them drops what was read: ``learn``)."""
        case: CaseView | None = self.read_once_per_batch(("case", case_id), lambda: self.cases.get(case_id))
        return case

    @contextmanager
    def _prepared_for_sending(self, bundles: Sequence[Sequence[Notification]]) -> Iterator[None]:
        """While a delivery group is sent: the case facts of its notifications and the
        overviews of the addressees it writes to, each read in one statement for the group."""
        to_write = [bundle for bundle in bundles if bundle and bundle[0].channel != "portal"]
        cases = self.cases_of({n.case_id for bundle in to_write for n in bundle})
        records = self.overview.records_of({bundle[0].subject for bundle in to_write})
        self._sending = _Sending(greenlet.getcurrent(), cases, records)
        try:
            yield
        finally:
            self._sending = None

    def _sending_here(self) -> _Sending | None:
        sending = self._sending
        return sending if sending is not None and sending.owner is greenlet.getcurrent() else None

    def cases_of(self, case_ids: Iterable[UUID]) -> dict[UUID, CaseView | None]:
        """The facts of several cases, in one statement (None for a case not on record)."""
        wanted = sorted({str(case_id) for case_id in case_ids})
        found: dict[UUID, CaseView | None] = {UUID(case_id): None for case_id in wanted}
        if not wanted:
            return found
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                "SELECT case_id, status, facts, registered_at, ended_at, outcome"
                f" FROM {self.cases.table} WHERE case_id IN ({', '.join(['?'] * len(wanted))})",
                wanted,
            ).fetchall()
        for row in rows:
            found[UUID(row[0])] = self.cases.view(row)
        return found

    def _records(self, subject: str) -> SubjectRecords:
        sending = self._sending_here()
        if sending is not None and subject in sending.records:
            return sending.records[subject]
        return self.overview.records(subject)

    def _contact_in(self, case: CaseView | None, subject: str, addressee: str) -> Contact:
        """``_contact`` from case facts already read."""
        if case is None:
            return Contact()
        facts = case.subjects.get(addressee) or case.subjects.get(subject)
        return Contact.from_details(self.vault.open(facts.details) if facts and facts.details else None)

    def _addressee_contact(self, notification: Notification) -> Contact:
        return self._contact(notification.case_id, notification.subject, notification.addressee)

    def _notice(self, notifications: Sequence[Notification], contact: Contact, message_id: str) -> Notice:
        """The notice of a bundle in the addressee's language, worded from the overview (or, for
        a request's step, from the step itself)."""
        first = notifications[0]
        if first.request is not None:
            case = self._records(first.subject)
            request_words = request_notice_words(
                first,
                first.request,
                case,
                contact.name,
                Wording(self.catalogue, contact.language),
                self.vault.open,
                self.settings.portal,
                reference=message_id,
            )
            return self.templates.render_request(message_id, contact.language, request_words)
        words = notice_words(
            notifications,
            self._records(notifications[0].subject),
            contact.name,
            Wording(self.catalogue, contact.language),
            self.vault.open,
            lambda override_id: self._find_deferral(override_id) is not None,
            self.settings.portal,
            reference=message_id,
        )
        return self.templates.render(message_id, contact.language, words)

    # -- the citizen's overview ---------------------------------------------------------------
    def overview_for(self, subject: str, language: str = "nl") -> Overview:
        """Everything on record about the subject, in their language, personal values opened
        (or marked purged); what may not be told yet left out (``view.present``). The reading
        is a processing of its own, logged (``shared.ldv``)."""
        overview = present(
            self.overview.records(subject), subject, Wording(self.catalogue, language), self.vault.open
        )
        self.record_processing(OVERVIEW_READ, subject)
        return overview

    # -- saving: events, their projections and the tracking record together -----------------
    def _save(
        self,
        tracking: Tracking | None,
        *aggregates: Notification | Deferral,
        write: Callable[[Cursor], None] | None = None,
        told_with_entries: bool = False,
    ) -> None:
        """Saves the aggregates' new events with their projections and ``write``, and the
        tracking record, together. ``told_with_entries``: ``write`` wrote the new
        notifications' state on their overview entries already (``overview.told_after``)."""
        new_events = [e for aggregate in aggregates for e in aggregate.pending_events]

        def write_all(cur: Cursor) -> None:
            if write is not None:
                write(cur)
            self._project(cur, new_events, told_with_entries)

        self.save_tracked(tracking, *aggregates, write=write_all)

    def _save_own(self, *aggregates: Notification | Deferral) -> None:
        self._save(None, *aggregates)

    def _project(
        self, cur: Cursor, own_events: Sequence[DomainEventProtocol[UUID]], told_with_entries: bool = False
    ) -> None:
        """Applies the service's own new events to its delivery queue and the overview. A
        notification scheduled in this save is written once, as its events leave it, with
        one statement per table for all of them; the others event by event."""
        new: dict[UUID, list[Any]] = {}
        for domain_event in own_events:
            if type(domain_event).__name__ == "NotificationScheduled":
                new[domain_event.originator_id] = []
        for domain_event in own_events:
            if domain_event.originator_id in new:
                new[domain_event.originator_id].append(domain_event)
        if new:
            self.deliveries.project_new(cur, list(new.values()))
            self.overview.add_notifications(cur, [events[0] for events in new.values()])
            if not told_with_entries:
                self.overview.change_notifications(cur, [e for events in new.values() for e in events])
        changed = [e for e in own_events if e.originator_id not in new]
        if changed and all(isinstance(e, Notification.Event) for e in changed):
            # A delivery run's claims or outcomes: every row and entry written once.
            self.deliveries.project_changes(cur, changed)
            self.overview.change_notifications(cur, changed)
            return
        for domain_event in changed:
            self.deliveries.project(cur, domain_event)
            self.overview.apply_own(cur, domain_event)


@dataclass(frozen=True)
class _Sending:
    """What the delivery group that ``owner`` (a green thread) sends has read once for all."""

    owner: Any
    cases: dict[UUID, CaseView | None]
    records: dict[str, SubjectRecords]


def _today() -> date:
    return datetime.now(UTC).date()
