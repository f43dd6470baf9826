"""Delivering notifications: the delivery queue, and the dispatcher that sends what is due.

The queue is a projection of the service's own events, in its store: ``notification_deliveries``
holds each notification's place (scheduled, deferred, attempted, retrying, sent) and when it is
next due; ``notification_deferrals`` the deferrals a professional must review. The dispatcher
takes what is due, bundled per consultation and addressee, claims it on record
(``DeliveryAttempted``) so that no other dispatcher sends it too, sends it on its channel, and
records the outcome: sent; or failed and retried with backoff; or rerouted to the fallback
channel when its own cannot work.

A run claims the due bundles a group at a time (``KETEN_NOTIFY_BATCH``): the group's claims in
one transaction, then its sends, then what became of them in one more transaction.

At most one message per notification while the process runs: once a bundle went out, its
"sent" must reach the record. If that write fails, the dispatcher keeps the outcome in memory
and retries the record with backoff, never the send, and leaves the bundle's notifications
alone meanwhile. Only a crash between the sends and the group's record loses that memory: the claims go
stale after ``STALE_ATTEMPT`` and the group's bundles that went out are sent again, with the
same Message-ID when they hold the same notifications (docs/operations.md, "A notice sent
twice").
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, PersistenceError

from services.notification.channels import DeliveryFailed, EmailChannel, LetterChannel, Notice
from services.notification.domain import NOTIFICATION_NAMESPACE, STALE_ATTEMPT, Notification
from shared import metrics
from shared.application import KetenApplication
from shared.db import Cursor

log = logging.getLogger(__name__)


#: Seconds to wait before each further try to record a bundle that went out, within the run
#: that sent it; after these, the next runs try again, waiting longer each time (up to a minute).
RECORD_RETRY_DELAYS = (0.2, 0.8)
RECORD_RETRY_CAP = timedelta(minutes=1)

#: The places in the queue from which a notification goes out when its time is due (SQL).
DUE_STATUSES = "('scheduled', 'retrying', 'attempted')"

#: A notification's place in the delivery queue after each of its events.
DELIVERY_STATUS: Mapping[str, str] = MappingProxyType(
    {
        "NotificationDeferred": "deferred",
        "NotificationReleased": "scheduled",
        "DeliveryAttempted": "attempted",
        "NotificationFailed": "retrying",
        "NotificationRerouted": "scheduled",
        "NotificationSent": "sent",
    }
)


@dataclass(frozen=True)
class Contact:
    """An addressee's contact details as registered (opened); nothing once purged."""

    name: str | None = None
    email: str | None = None
    postal_address: str | None = None
    channel: str = "portal"
    language: str = "nl"

    @classmethod
    def from_details(cls, details: object) -> Contact:
        """From the opened ``details`` of a subject (``{name, email, postal_address, channel,
        language}``); anything else (purged, absent) is no contact at all."""
        if not isinstance(details, dict):
            return cls()
        return cls(
            name=_text(details.get("name")),
            email=_text(details.get("email")),
            postal_address=_text(details.get("postal_address")),
            channel=str(details.get("channel") or "portal"),
            language=str(details.get("language") or "nl"),
        )


def choose_channel(contact: Contact, email_available: bool) -> str:
    """The addressee's preferred channel, if it can work; else a letter; else the portal."""
    if contact.channel == "email" and contact.email and email_available:
        return "email"
    if contact.channel in ("email", "letter") and contact.postal_address:
        return "letter"
    return "portal"


def message_id_for(notifications: Iterable[Notification]) -> str:
    """The Message-ID of one bundle: the same notifications always give the same one, so that a
    notice sent again after a crash is recognisably the same message."""
    return str(uuid5(NOTIFICATION_NAMESPACE, ",".join(sorted(str(n.id) for n in notifications))))


@dataclass(frozen=True)
class DeferralDue:
    """A deferral whose review date has come, and how many notifications it holds."""

    override_id: UUID
    case_id: UUID
    review_on: date
    held: int


class DeliveryQueue:
    """The delivery queue and the deferrals to review, projected from the service's own events
    in the same transaction as they are saved.

    The delivery timer looks at the queue only when something may be due (``nothing_due``):
    after a look it knows the next due time, and every save of the service's own events in
    this process makes it look again. What another process (a replica) changed is seen within
    ``LOOK_AT_LEAST_EVERY``; that process's own timer sends it at once anyway."""

    LOOK_AT_LEAST_EVERY = timedelta(seconds=30)

    def __init__(
        self, app: KetenApplication, bundle_seconds: float, stale_after: timedelta = STALE_ATTEMPT
    ) -> None:
        self.app = app
        self.bundle_seconds = bundle_seconds
        #: When a claimed attempt that never finished is due again (``KETEN_NOTIFY_STALE_SECONDS``).
        self.stale_after = stale_after
        self.deliveries_table = f"{app.name}_deliveries"
        self.deferrals_table = f"{app.name}_deferrals"
        #: Saves of the service's own events in this process so far (after their commit).
        self.changes = 0
        self._next_look: datetime | None = None  # None: look at the next run
        app.on_save(self._changed)
        app.sql.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {self.deliveries_table} ("
                " notification_id TEXT PRIMARY KEY, bundle TEXT NOT NULL, override_id TEXT,"
                " status TEXT NOT NULL, due_at TEXT NOT NULL)",
                f"CREATE INDEX IF NOT EXISTS {self.deliveries_table}_due"
                f" ON {self.deliveries_table} (status, due_at)",
                f"CREATE INDEX IF NOT EXISTS {self.deliveries_table}_override"
                f" ON {self.deliveries_table} (override_id)",
                f"CREATE TABLE IF NOT EXISTS {self.deferrals_table} ("
                " override_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, recorded_by TEXT NOT NULL,"
                " review_on TEXT NOT NULL, ended INTEGER NOT NULL)",
                f"CREATE INDEX IF NOT EXISTS {self.deferrals_table}_review"
                f" ON {self.deferrals_table} (ended, review_on)",
                f"CREATE INDEX IF NOT EXISTS {self.deferrals_table}_case ON {self.deferrals_table} (case_id)",
            ]
        )

    def project(self, cur: Cursor, own_event: DomainEventProtocol[UUID]) -> None:
        """Applies one of the service's own events to the queue and the deferrals."""
        name = type(own_event).__name__
        # The aggregates' events are classes eventsourcing makes from the decorated methods
        # (services/notification/domain.py): read by name, attributes as the methods name them.
        domain_event: Any = own_event
        notification_id = str(domain_event.originator_id)
        at: datetime = domain_event.timestamp
        if name == "NotificationScheduled":
            due = at + timedelta(seconds=self.bundle_seconds)
            cur.execute(
                f"INSERT INTO {self.deliveries_table} (notification_id, bundle, override_id, status, due_at)"
                " VALUES (?, ?, ?, 'scheduled', ?) ON CONFLICT (notification_id) DO NOTHING",
                (notification_id, domain_event.bundle, _text(domain_event.override_id), due.isoformat()),
            )
        elif name in DELIVERY_STATUS:
            status, due = self._queue_state(domain_event)
            cur.execute(
                f"UPDATE {self.deliveries_table} SET status = ?, due_at = ? WHERE notification_id = ?",
                (status, due.isoformat(), notification_id),
            )
            if name == "NotificationDeferred":
                # held under this deferral, also when its share was made under no override
                cur.execute(
                    f"UPDATE {self.deliveries_table} SET override_id = ? WHERE notification_id = ?",
                    (str(domain_event.override_id), notification_id),
                )
        elif name == "DeferralStarted":
            cur.execute(
                f"INSERT INTO {self.deferrals_table} (override_id, case_id, recorded_by, review_on, ended)"
                " VALUES (?, ?, ?, ?, 0) ON CONFLICT (override_id) DO NOTHING",
                (
                    str(domain_event.override_id),
                    str(domain_event.case_id),
                    domain_event.recorded_by,
                    domain_event.review_on.isoformat(),
                ),
            )
        elif name == "DeferralExtended":
            cur.execute(
                f"UPDATE {self.deferrals_table} SET review_on = ? WHERE override_id = ?",
                (domain_event.review_on.isoformat(), str(domain_event.override_id)),
            )
        elif name in ("DeferralEnded", "DeferralLapsed"):
            cur.execute(
                f"UPDATE {self.deferrals_table} SET ended = 1 WHERE override_id = ?",
                (str(domain_event.override_id),),
            )

    def _queue_state(self, delivery_event: Any) -> tuple[str, datetime]:
        """The status and due time one of ``DELIVERY_STATUS``'s events leaves a notice at in the
        queue: a failure is due at its retry, a claim when it would be stale, else at once."""
        name = type(delivery_event).__name__
        if name == "NotificationFailed":
            due: datetime = delivery_event.retry_at
        elif name == "DeliveryAttempted":
            due = delivery_event.timestamp + self.stale_after
        else:
            due = delivery_event.timestamp
        return DELIVERY_STATUS[name], due

    def project_new(self, cur: Cursor, new_notifications: Sequence[Sequence[Any]]) -> None:
        """``project`` of newly scheduled notifications, each given as all its events of the
        save (``NotificationScheduled`` first): each one's row as its events leave it, all in
        one statement instead of an insert and an update per further event."""
        rows = []
        for own_events in new_notifications:
            scheduled = own_events[0]
            override_id = _text(scheduled.override_id)
            status, due = "scheduled", scheduled.timestamp + timedelta(seconds=self.bundle_seconds)
            for later in own_events[1:]:
                name = type(later).__name__
                if name not in DELIVERY_STATUS:
                    continue
                status, due = self._queue_state(later)
                if name == "NotificationDeferred":
                    override_id = str(later.override_id)
            rows.append(
                (str(scheduled.originator_id), scheduled.bundle, override_id, status, due.isoformat())
            )
        if rows:
            values = ", ".join(["(?, ?, ?, ?, ?)"] * len(rows))
            cur.execute(
                f"INSERT INTO {self.deliveries_table} (notification_id, bundle, override_id, status, due_at)"
                f" VALUES {values} ON CONFLICT (notification_id) DO NOTHING",
                [value for row in rows for value in row],
            )

    def project_changes(self, cur: Cursor, own_events: Sequence[Any]) -> None:
        """``project`` of the delivery events of notifications already in the queue (several,
        in order): each one's row as its events leave it, in one statement on PostgreSQL."""
        rows: dict[str, list[Any]] = {}
        for domain_event in own_events:
            name = type(domain_event).__name__
            if name not in DELIVERY_STATUS:
                continue
            status, due = self._queue_state(domain_event)
            row = rows.setdefault(str(domain_event.originator_id), [None, None, None])
            row[0], row[1] = status, due.isoformat()
            if name == "NotificationDeferred":
                row[2] = str(domain_event.override_id)
        if not rows:
            return
        if self.app.sql.dialect != "postgresql" or len(rows) == 1:
            for notification_id, (status, due_at, override_id) in rows.items():
                cur.execute(
                    f"UPDATE {self.deliveries_table} SET status = ?, due_at = ?,"
                    " override_id = COALESCE(?, override_id) WHERE notification_id = ?",
                    (status, due_at, override_id, notification_id),
                )
            return
        values = ", ".join(["(?, ?, ?, ?)"] * len(rows))
        cur.execute(
            f"UPDATE {self.deliveries_table} AS d SET status = v.status, due_at = v.due_at,"
            " override_id = COALESCE(v.override_id, d.override_id)"
            f" FROM (VALUES {values}) AS v (notification_id, status, due_at, override_id)"
            " WHERE d.notification_id = v.notification_id",
            [value for notification_id, row in rows.items() for value in (notification_id, *row)],
        )

    def _changed(self) -> None:
        self.changes += 1
        self._next_look = None

    def nothing_due(self, now: datetime) -> bool:
        """Whether a delivery run at ``now`` can skip the store: nothing was saved here since
        the last look, and the next due time found then has not come."""
        return self._next_look is not None and now < self._next_look

    def plan_next_look(self, now: datetime, changes_before: int) -> None:
        """After a run that began when ``changes`` was ``changes_before``: when to look next.
        A save during the run (its rows may be missing from what the run read) means at once."""
        with self.app.sql.transaction(commit=False) as cur:
            row = cur.execute(
                f"SELECT MIN(due_at) FROM {self.deliveries_table}"
                f" WHERE status IN {DUE_STATUSES} AND due_at > ?",
                (now.isoformat(),),
            ).fetchone()
        latest = now + self.LOOK_AT_LEAST_EVERY
        next_due = datetime.fromisoformat(row[0]) if row and row[0] else latest
        if self.changes == changes_before:
            self._next_look = min(next_due, latest)

    def due_bundles(self, now: datetime) -> list[tuple[UUID, ...]]:
        """The notifications due at ``now``, bundled (one bundle: one message), oldest first."""
        with self.app.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT notification_id, bundle FROM {self.deliveries_table}"
                f" WHERE status IN {DUE_STATUSES} AND due_at <= ?"
                " ORDER BY due_at, notification_id",
                (now.isoformat(),),
            ).fetchall()
        bundles: dict[str, list[UUID]] = defaultdict(list)
        for notification_id, bundle in rows:
            bundles[bundle].append(UUID(notification_id))
        return [tuple(ids) for ids in bundles.values()]

    def held_under(self, override_id: UUID) -> list[UUID]:
        """The notifications a deferral holds."""
        with self.app.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT notification_id FROM {self.deliveries_table}"
                " WHERE override_id = ? AND status = 'deferred' ORDER BY notification_id",
                (str(override_id),),
            ).fetchall()
        return [UUID(row[0]) for row in rows]

    def deferrals_due(self, agency: str, today: date) -> list[DeferralDue]:
        """The deferrals ``agency`` recorded whose review date has come."""
        with self.app.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT override_id, case_id, review_on FROM {self.deferrals_table}"
                " WHERE recorded_by = ? AND ended = 0 AND review_on <= ? ORDER BY review_on, override_id",
                (agency, today.isoformat()),
            ).fetchall()
            due = []
            for override_id, case_id, review_on in rows:
                held = cur.execute(
                    f"SELECT COUNT(*) FROM {self.deliveries_table}"
                    " WHERE override_id = ? AND status = 'deferred'",
                    (override_id,),
                ).fetchone()[0]
                due.append(
                    DeferralDue(UUID(override_id), UUID(case_id), date.fromisoformat(review_on), int(held))
                )
        return due

    def deferrals_in_force(self, case_id: UUID, today: date) -> list[UUID]:
        """The deferrals of a case that hold notices today (not ended, review date not passed)."""
        with self.app.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT override_id FROM {self.deferrals_table}"
                " WHERE case_id = ? AND ended = 0 AND review_on >= ? ORDER BY override_id",
                (str(case_id), today.isoformat()),
            ).fetchall()
        return [UUID(row[0]) for row in rows]

    def deferrals_lapsed(self, today: date) -> list[UUID]:
        """The deferrals whose review date passed with nobody ending or extending them."""
        with self.app.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT override_id FROM {self.deferrals_table}"
                " WHERE ended = 0 AND review_on < ? ORDER BY override_id",
                (today.isoformat(),),
            ).fetchall()
        return [UUID(row[0]) for row in rows]

    def count_deferrals_due(self, today: date) -> int:
        with self.app.sql.transaction(commit=False) as cur:
            row = cur.execute(
                f"SELECT COUNT(*) FROM {self.deferrals_table} WHERE ended = 0 AND review_on <= ?",
                (today.isoformat(),),
            ).fetchone()
        return int(row[0])


@dataclass
class _Unrecorded:
    """A bundle that went out and whose "sent" is not on record yet."""

    message_id: str
    notification_ids: tuple[UUID, ...]
    channel: str
    tries: int = 0
    next_try: datetime | None = None


class Dispatcher:
    """Sends what is due and records what happened; see the module's docstring.

    A run takes the due bundles in groups of up to ``batch``: the group's claims are saved in
    one transaction, its bundles sent one after another, and what became of them (sent, or
    failed and to be retried) saved in one more. A group whose claim collides with another
    dispatcher's is claimed bundle by bundle instead, as with ``batch`` 1."""

    def __init__(
        self,
        queue: DeliveryQueue,
        *,
        load: Callable[[Iterable[UUID]], list[Notification]],
        save: Callable[..., None],
        contact_of: Callable[[Notification], Contact],
        compose: Callable[[Sequence[Notification], Contact, str], Notice],
        email: EmailChannel,
        letters: LetterChannel,
        retry_base_seconds: float,
        batch: int = 1,
        prepare: Callable[[Sequence[Sequence[Notification]]], contextlib.AbstractContextManager[Any]]
        | None = None,
    ) -> None:
        self.queue = queue
        self.load = load
        self.save = save
        self.contact_of = contact_of
        self.compose = compose
        self.email = email
        self.letters = letters
        self.retry_base_seconds = retry_base_seconds
        #: Bundles per claim and per record (``KETEN_NOTIFY_BATCH``).
        self.batch = max(1, batch)
        #: Reads once for a group what sending its bundles needs (contacts, overviews).
        self.prepare = prepare or (lambda bundles: contextlib.nullcontext())
        #: Bundles that went out and whose "sent" is not on record yet, by Message-ID.
        self._unrecorded: dict[str, _Unrecorded] = {}

    @property
    def records_pending(self) -> bool:
        """Whether a bundle that went out still waits for its "sent" to be on record."""
        return bool(self._unrecorded)

    def dispatch_due(self, now: datetime) -> int:
        """Sends every bundle that is due at ``now``; returns how many notifications went out.
        Bundles sent earlier whose record failed are recorded first, and never sent again."""
        for unrecorded in list(self._unrecorded.values()):
            if unrecorded.next_try is None or unrecorded.next_try <= now:
                self._record(unrecorded, now)
        held = {i for unrecorded in self._unrecorded.values() for i in unrecorded.notification_ids}
        bundles = [
            kept for ids in self.queue.due_bundles(now) if (kept := tuple(i for i in ids if i not in held))
        ]
        sent = 0
        for start in range(0, len(bundles), self.batch):
            sent += self._send_group(bundles[start : start + self.batch], now)
        return sent

    def _due(self, notifications: Iterable[Notification], now: datetime) -> list[Notification]:
        # Due as they are on record now, not as the queue read a moment ago: another
        # dispatcher (a replica) may have claimed them since (``Notification.due_at``).
        return [n for n in notifications if n.due_at(now, self.queue.stale_after)]

    def _send_group(self, bundles: Sequence[tuple[UUID, ...]], now: datetime) -> int:
        loaded = {n.id: n for n in self.load(i for ids in bundles for i in ids)}
        group = [due for ids in bundles if (due := self._due((loaded[i] for i in ids if i in loaded), now))]
        if not group:
            return 0
        claimed = self._claim(group, now)
        if not claimed:
            return 0
        went_out: list[tuple[list[Notification], str]] = []
        failed: list[Notification] = []
        # A claim is this dispatcher's alone only until it goes stale: a bundle whose claim
        # is half-way there is not sent now (another dispatcher may take it for due soon); it
        # goes out once its claim is stale, once, by whichever dispatcher claims it then.
        fresh_until = time.monotonic() + self.queue.stale_after.total_seconds() / 2
        with self.prepare(claimed):
            for done, notifications in enumerate(claimed):
                if time.monotonic() > fresh_until:
                    left = len(claimed) - done
                    log.warning("delivery run: %d bundle(s) left until their claims are stale", left)
                    break
                message_id = message_id_for(notifications)
                if self._send(notifications, message_id, now):
                    went_out.append((notifications, message_id))
                else:
                    failed.extend(notifications)
        self._record_sent(went_out, failed, now)
        return sum(len(notifications) for notifications, _ in went_out)

    def _claim(self, group: list[list[Notification]], now: datetime) -> list[list[Notification]]:
        """Claims the group's bundles on record (``DeliveryAttempted``) before anything is
        sent: all in one transaction, or, when another dispatcher claimed one of them first
        (the same version), bundle by bundle, leaving it the ones it has."""
        for notifications in group:
            message_id = message_id_for(notifications)
            for notification in notifications:
                notification.attempt(message_id, now, self.queue.stale_after)
        try:
            self.save(*(n for notifications in group for n in notifications))
            return group
        except IntegrityError:
            if len(group) == 1:
                return []  # another dispatcher claimed one of them first: its to send
        claimed = []
        for notifications in group:
            fresh = self._due(self.load(n.id for n in notifications), now)
            if not fresh:
                continue
            message_id = message_id_for(fresh)
            for notification in fresh:
                notification.attempt(message_id, now, self.queue.stale_after)
            try:
                self.save(*fresh)
            except IntegrityError:
                continue
            claimed.append(fresh)
        return claimed

    def _send(self, notifications: list[Notification], message_id: str, now: datetime) -> bool:
        """Sends one claimed bundle; whether it went out (else its notifications are marked
        failed, to retry or reroute, not saved yet)."""
        channel = notifications[0].channel
        try:
            self._deliver(notifications, message_id)
        except DeliveryFailed as failure:
            log.warning(
                "notification %s by %s failed: %s",
                message_id,
                channel,
                failure.code,
                extra={"channel": channel, "reason_code": failure.code},
            )
            for notification in notifications:
                notification.mark_failed(failure.code, failure.permanent, now, self.retry_base_seconds)
            metrics.notifications.labels(channel, "failed").inc(len(notifications))
            return False
        metrics.notifications.labels(channel, "sent").inc(len(notifications))
        log.info("notification %s sent by %s (%d share(s))", message_id, channel, len(notifications))
        for notification in notifications:
            notification.mark_sent(message_id)
        return True

    def _deliver(self, notifications: list[Notification], message_id: str) -> None:
        first = notifications[0]
        if first.channel == "portal":
            return  # the overview entry is the notice
        contact = self.contact_of(first)
        notice = self.compose(notifications, contact, message_id)
        if first.channel == "email":
            if not contact.email or not self.email.available:
                raise DeliveryFailed("no_email_address", permanent=True)
            self.email.send(notice, contact.email)
        elif first.channel == "letter":
            if not contact.postal_address:
                raise DeliveryFailed("no_postal_address", permanent=True)
            self.letters.send(notice, contact.name, contact.postal_address)

    # -- recording what went out ------------------------------------------------------------
    def _record_sent(
        self, went_out: list[tuple[list[Notification], str]], failed: list[Notification], now: datetime
    ) -> None:
        """Saves what became of a group's bundles (marked sent or failed), in one transaction.
        If that fails, the failures are left to go stale and be tried again; each bundle that
        went out is kept in memory and its record retried, never its send."""
        try:
            self.save(*(n for notifications, _ in went_out for n in notifications), *failed)
            return
        except PersistenceError as error:
            if not went_out:
                raise
            for notifications, message_id in went_out:
                channel = notifications[0].channel
                log.warning(
                    "notification %s went out by %s but is not on record (%s):"
                    " the record is retried, never the send",
                    message_id,
                    channel,
                    type(error).__name__,
                    extra={"channel": channel, "reason_code": "sent_not_recorded"},
                )
                self._unrecorded[message_id] = _Unrecorded(
                    message_id, tuple(n.id for n in notifications), channel
                )
        for delay in RECORD_RETRY_DELAYS:
            time.sleep(delay)
            for _, message_id in went_out:
                unrecorded = self._unrecorded.get(message_id)
                if unrecorded is not None:
                    self._record(unrecorded, now)
            if not any(message_id in self._unrecorded for _, message_id in went_out):
                return

    def _record(self, unrecorded: _Unrecorded, now: datetime) -> bool:
        """Records that ``unrecorded`` went out, from the notifications as they are on record
        now (a concurrent change, or a write that did reach the store, is respected)."""
        try:
            notifications = self.load(unrecorded.notification_ids)
            for notification in notifications:
                notification.mark_sent(unrecorded.message_id)
            self.save(*notifications)
        except PersistenceError:
            unrecorded.tries += 1
            unrecorded.next_try = now + min(RECORD_RETRY_CAP, timedelta(seconds=2**unrecorded.tries))
            return False
        del self._unrecorded[unrecorded.message_id]
        log.info("notification %s is on record as sent", unrecorded.message_id)
        return True


def _text(value: object) -> str | None:
    return None if value is None else str(value)
