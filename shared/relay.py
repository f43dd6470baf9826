"""The outbox relay: an application's notification log, published to ``keten.events``.

A service never publishes straight after ``save()``: a crash between the two would lose the
event. The notification log is the outbox. The relay reads what was stored after its position,
publishes it with publisher confirms, and only then moves its position (a tracking record in the
application's own store). A crash at any point means some events are published again;
consumers drop what they already processed (see ``shared.consumer``). ``RelayLoop`` keeps the
relay going while its service runs.

Each published event is signed with its service's key (``shared.provenance``) and carries the
chain of positions before it (``previous``, see ``shared.contracts.envelope``): the relay keeps,
per kind of event, the position of the latest one it published, and stores that chain with its
position in one transaction, so a relay that starts again (or another replica that takes over)
continues the same chain. ``published_events_page`` serves the same events again to a consumer
that found a gap (the catch-up RPC every publishing service offers).

Only one relay per application publishes at a time: on PostgreSQL it holds an advisory lock
(other replicas stand by), on SQLite the store belongs to one process anyway.

Nothing is done while nothing happens: the relay wakes when events are committed (a save in
its own process; on PostgreSQL also a ``NOTIFY`` from any process, see ``shared.pgstore``) and
otherwise looks only every ``relay_interval`` seconds (a fallback); it checks its lease every
``PgLease.CHECK_EVERY`` seconds, and its lag is computed when the metrics are scraped. With the embedded
in-process broker, whose queues vanish with the process, the relay starts from the beginning of
the log at every start, and consumers' tracking drops what they already had.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import select
import threading
import time
import zlib
from typing import Any

from eventsourcing.persistence import Tracking

from shared import logs, metrics
from shared.application import KetenApplication
from shared.config import Settings
from shared.contracts.envelope import OutgoingMessage, correlation_of, encode_event, published_name
from shared.db import Cursor, PgDatastore, has_pending_input
from shared.logs import log_context
from shared.partitions import PARTITION_HEADER, case_key, partition_of, source_streams, stream_name
from shared.provenance import EventKeys
from shared.publishing import ConfirmingPublisher
from shared.tlog import TransparencyLog, head_message, verify_log

log = logging.getLogger(__name__)

POSITION = "relay:keten.events"


class EventRelay:
    def __init__(
        self,
        app: KetenApplication,
        source: str,
        publisher: ConfirmingPublisher,
        batch_size: int = 500,
        durable_position: bool = True,
    ):
        self.app = app
        self.source = source
        self.publisher = publisher
        self.batch_size = batch_size
        self.durable_position = durable_position
        self._position = app.position(POSITION) if durable_position else 0
        self.keys = EventKeys.for_settings(app.settings)
        self.partitions = app.settings.event_partitions
        #: Per stream (one, or one per partition) and kind of event, the position of the latest
        #: one published (the chain's head).
        self.chains = {
            stream: self._stored_chain(stream) if durable_position else {}
            for stream in source_streams(source, self.partitions)
        }
        self.last_progress = time.monotonic()
        #: The service's verifiable log, appended with each round (``shared.tlog``).
        self.log = TransparencyLog.of(app) if app.logged_events else None
        self._unlogged: list[tuple[Any, Any]] = []
        self._logged_at = time.monotonic()
        if self.log is not None and durable_position:
            self.log.catch_up(self._position)  # events relayed before the log was kept

    @property
    def chain(self) -> dict[str, int]:
        """The chain of the whole log (unpartitioned)."""
        return self.chains[self.source]

    def _stored_chain(self, stream: str) -> dict[str, int]:
        chain = self.app.relay_chain(stream)
        if chain or not self._position or stream != self.source:
            return chain
        # Published before the chain was kept: rebuilt once from the log, up to the position.
        log.info("%s relay: rebuilding the chain of positions up to %s", self.source, self._position)
        start = 0
        while start < self._position:
            batch = self.app.recorder.select_notifications(
                start=start, limit=1000, stop=self._position, inclusive_of_start=False
            )
            if not batch:
                break
            for notification in batch:
                name = published_name(self.app.mapper.to_domain_event(notification), self.source)
                if name is not None:
                    chain[name] = notification.id
            start = batch[-1].id
        return chain

    @property
    def position(self) -> int:
        return self._position

    def lag(self) -> int:
        """Events stored but not yet published."""
        return max(0, (self.app.recorder.max_notification_id() or 0) - self._position)

    def publish_pending(self) -> int:
        """Publishes one batch after the position; returns how many notifications it covered."""
        notifications = self.app.recorder.select_notifications(
            start=self._position, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            self.last_progress = time.monotonic()
            self._log_without_position([])
            return 0
        messages = []
        published: list[tuple[str, int, str]] = []
        delivered = []  # stored events with messages for an inbox
        decoded = []
        chains = {stream: dict(chain) for stream, chain in self.chains.items()}
        domain_events = [self.app.mapper.to_domain_event(notification) for notification in notifications]
        # What the round's events tell agencies' inboxes, with what they need read once for the round.
        inboxes = self.app.round_inbox_messages(domain_events)
        for notification, domain_event, inbox in zip(notifications, domain_events, inboxes, strict=True):
            decoded.append((notification, domain_event))
            partition = partition_of(case_key(domain_event), self.partitions)
            stream = stream_name(self.source, partition, self.partitions)
            chain = chains[stream]
            message = encode_event(domain_event, self.source, notification.id, previous=chain, stream=stream)
            if message is not None:
                if self.partitions > 1:
                    message = dataclasses.replace(
                        message, headers={**message.headers, PARTITION_HEADER: str(partition)}
                    )
                messages.append(self.signed(message))
                published.append((message.routing_key, notification.id, correlation_of(domain_event)))
                chain[type(domain_event).__name__] = notification.id
            if inbox:
                messages.extend(inbox)
                delivered.append(domain_event)
        self.publisher.publish(messages)
        # Confirmed: the inboxes took them. Receipts are saved with the position, once.
        receipts = self.app.inbox_receipts(delivered) if delivered else []
        if log.isEnabledFor(logging.INFO):  # not a context set per event for a line dropped
            for key, position, correlation_id in published:
                with log_context(correlation_id=correlation_id):
                    log.info("published %s at %s", key, position, extra={"position": position})
        last = notifications[-1].id
        self._log_without_position(decoded)
        if self.durable_position:
            moved = {
                stream: {kind: at for kind, at in chain.items() if self.chains[stream].get(kind) != at}
                for stream, chain in chains.items()
            }
            log_round = self.log.round(decoded) if self.log is not None else contextlib.nullcontext(None)
            with log_round as leaves:

                def write(cur: Cursor) -> None:
                    for stream, kinds in moved.items():
                        self.app.write_relay_chain(cur, stream, kinds)
                    if leaves is not None:
                        leaves.write(cur)  # the leaves, in the transaction of the position

                self.app.save_tracked(Tracking(POSITION, last), *receipts, write=write)
        elif receipts:
            self.app.save_tracked(None, *receipts)
        self.chains = chains
        self._position = last
        self.last_progress = time.monotonic()
        return len(notifications)

    def _log_without_position(self, decoded: list[tuple[Any, Any]]) -> None:
        """Without a durable position (the embedded platform) there is no transaction of the
        relay's to append in: leaves gather for a second (or a batch) and go in one commit of
        their own, not one per round. Lost in a crash, they are made again: this relay starts
        from the beginning of the log, and the log skips what it holds."""
        if self.log is None or self.durable_position:
            return
        self._unlogged.extend(pair for pair in decoded if type(pair[1]).__name__ in self.log.kinds)
        now = time.monotonic()
        if self._unlogged and (len(self._unlogged) >= self.batch_size or now - self._logged_at >= 1.0):
            self.log.append(self._unlogged)
            self._unlogged, self._logged_at = [], now

    def signed(self, message: OutgoingMessage) -> OutgoingMessage:
        signature = self.keys.sign(self.source, message.body)
        return dataclasses.replace(message, headers={**message.headers, **signature.headers()})


class PgLease:
    """Leadership by a session advisory lock on a dedicated connection."""

    #: Seconds between round trips that check a held lease's connection still answers (in
    #: between, only its socket is looked at, which costs no round trip).
    CHECK_EVERY = 5.0

    def __init__(self, datastore: PgDatastore, name: str):
        self.datastore = datastore
        self.key = zlib.crc32(f"{datastore.schema}:{name}".encode())
        self._conn: Any = None
        self._held = False
        self._checked = 0.0

    def acquire(self) -> bool:
        """True while this process holds the lease: a dropped connection loses the lock, and
        another replica may take over. A connection the server ended shows at once (its
        socket has the goodbye to read); one that silently died, at the next check."""
        try:
            if self._conn is None or self._conn.closed or has_pending_input(self._conn):
                self.release()
                self._conn = self.datastore._connect()
                self._conn.autocommit = True
            with self._conn.cursor() as cur:
                if self._held:
                    if time.monotonic() - self._checked >= self.CHECK_EVERY:
                        cur.execute("SELECT 1")
                        self._checked = time.monotonic()
                    return True
                cur.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                self._held = bool(cur.fetchone()[0])
                self._checked = time.monotonic()
                return self._held
        except Exception:
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a dead connection
                self._conn.close()
        self._conn = None
        self._held = False


class PgWakeup:
    """Calls ``wake`` whenever any process commits new events to the application's store:
    ``LISTEN`` on the events table's channel (``shared.pgstore``), on a connection of its own."""

    #: Seconds between looks at whether the relay is stopping, while nothing is committed.
    STOP_CHECK = 2.0

    def __init__(self, datastore: PgDatastore, channel: str, wake: Any):
        self.datastore = datastore
        self.channel = channel
        self.wake = wake
        self.stopping = False

    def run(self) -> None:
        backoff = 1.0
        while not self.stopping:
            conn = None
            try:
                conn = self.datastore._connect()
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f"LISTEN {self.channel}")
                self.wake()  # what was committed while nobody listened
                backoff = 1.0
                while not self.stopping:
                    readable, _, _ = select.select([conn], [], [], self.STOP_CHECK)
                    if readable:
                        conn.poll()
                        if conn.notifies:
                            conn.notifies.clear()
                            self.wake()
            except Exception as exc:
                # The relay still publishes on its fallback interval meanwhile.
                log.warning("relay wake-up: %s; listening again in %.0fs", type(exc).__name__, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()


class AlwaysLeader:
    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


class RelayLoop:
    """Keeps one application's outbox published while its service runs.

    Publishes only while it holds the lease (one publisher per application: a PostgreSQL
    advisory lock; other replicas stand by), wakes on every commit of events (a save in this
    process, or a ``NOTIFY`` on PostgreSQL) or after the relay interval, and backs off while the
    broker or the store is down. The service's ApplicationProvider runs it in a managed thread
    and stops it with the container.
    """

    #: Seconds a standby waits between tries to take the lease.
    STANDBY_RETRY = 5.0

    #: A relay with events waiting that has not published for this long is reported stuck.
    STUCK_AFTER = 60.0

    def __init__(self, app: KetenApplication, source: str, settings: Settings):
        self.app = app
        self.source = source
        self.settings = settings
        self.relay: EventRelay | None = None
        self._wake = threading.Event()
        self._stopping = False
        #: When the verifiable log's head is next signed, and the log next checked (monotonic).
        self._next_head = 0.0
        self._next_check = 0.0
        self._wakeup: PgWakeup | None = None
        app.on_save(self._wake.set)

    def stop(self) -> None:
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.stopping = True
        self._wake.set()

    def _woken_by_commit(self) -> None:
        if self.relay is not None:  # a standby does not publish: nothing to wake for
            self._wake.set()

    def current_lag(self) -> float:
        """The lag, computed when the metrics are scraped (not on every turn of the loop)."""
        relay = self.relay
        if relay is None:
            return 0.0
        try:
            return float(relay.lag())
        except Exception:
            return float("nan")  # the store does not answer: unknown, not zero

    def stuck(self) -> bool:
        relay = self.relay
        if relay is None:
            return False
        return time.monotonic() - relay.last_progress > self.STUCK_AFTER and relay.lag() > 0

    def run(self) -> None:
        settings = self.settings
        source = self.source
        logs.bind(source)
        publisher = ConfirmingPublisher(settings.amqp_uri, partitions=settings.event_partitions)
        datastore = getattr(self.app.recorder, "datastore", None)  # a lease on PostgreSQL only
        lease: PgLease | AlwaysLeader = (
            PgLease(datastore, f"relay:{self.app.name}")
            if isinstance(datastore, PgDatastore)
            else AlwaysLeader()
        )
        if isinstance(datastore, PgDatastore):
            channel = getattr(self.app.recorder, "wake_channel", None)
            if channel is not None:
                self._wakeup = PgWakeup(datastore, channel, self._woken_by_commit)
                threading.Thread(target=self._wakeup.run, name=f"{source}.relay-wakeup", daemon=True).start()
        backoff = 0.5
        while not self._stopping:
            leading = lease.acquire()
            metrics.relay_leader.labels(source).set(1 if leading else 0)
            if not leading:
                self.relay = None  # another replica relays; stand by
                with contextlib.suppress(KeyError):  # the leader's lag is the one that counts
                    metrics.relay_lag.remove(source)
                self._sleep(self.STANDBY_RETRY)
                continue
            try:
                if self.relay is None:
                    self.relay = EventRelay(
                        self.app,
                        source,
                        publisher,
                        batch_size=settings.relay_batch_size,
                        durable_position=not settings.embedded_broker,
                    )
                    metrics.relay_lag.labels(source).set_function(self.current_lag)
                published = self.relay.publish_pending()
                if published:
                    metrics.events_published.labels(source).inc(published)
                if self.relay.log is not None:
                    self.keep_log(self.relay.log, publisher)
                backoff = 0.5
                if published < settings.relay_batch_size:
                    self._sleep(settings.relay_interval)
            except Exception as exc:
                log.warning("%s relay: %s; retrying in %.1fs", source, type(exc).__name__, backoff)
                publisher.close()
                self._wake.wait(timeout=backoff)
                backoff = min(backoff * 2, 10.0)
        if self._wakeup is not None:
            self._wakeup.stopping = True
        publisher.close()
        lease.release()
        metrics.relay_leader.labels(source).set(0)

    def keep_log(self, log: TransparencyLog, publisher: ConfirmingPublisher) -> None:
        """Signs the log's head every ``log_head_interval`` while it grows and publishes it on
        ``keten.log``, and checks the log against the stored events every ``log_verify_interval``
        (``keten_log_verification_failures``)."""
        now = time.monotonic()
        if now >= self._next_head:
            self._next_head = now + self.settings.log_head_interval
            latest = log.latest_head()
            if latest is None or latest.size != log.size:
                publisher.publish([head_message(log.sign_head())])
            metrics.log_leaves.labels(self.source).set(log.size)
        if now >= self._next_check:
            self._next_check = now + self.settings.log_verify_interval
            # It reads every logged event: beside the relay, never in its way.
            threading.Thread(
                target=self._check_log_quietly, name=f"{self.source}-log-check", daemon=True
            ).start()

    def _check_log_quietly(self) -> None:
        try:
            self.check_log()
        except Exception as exc:  # the store may be down; the next check comes
            log.warning("%s: checking the verifiable log failed: %s", self.source, type(exc).__name__)

    def check_log(self) -> int:
        """Checks the log now; returns (and reports as a metric) how many things it found wrong."""
        report = verify_log(self.app)
        for finding in report.findings:
            log.error("verifiable log: %s", finding.line())
        metrics.log_verification_failures.labels(self.source).set(len(report.findings))
        return len(report.findings)

    def _sleep(self, seconds: float) -> None:
        """Until the next save, the stop, or ``seconds``."""
        self._wake.wait(timeout=seconds)
        self._wake.clear()
