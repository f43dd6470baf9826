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
(other replicas stand by), on SQLite the store belongs to one process anyway. With the embedded
in-process broker, whose queues vanish with the process, the relay starts from the beginning of
the log at every start, and consumers' tracking drops what they already had.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
import zlib
from typing import Any

from eventsourcing.persistence import Tracking

from shared import logs, metrics
from shared.application import KetenApplication
from shared.config import Settings
from shared.contracts.envelope import OutgoingMessage, correlation_of, encode_event, published_name
from shared.db import PgDatastore
from shared.logs import log_context
from shared.partitions import PARTITION_HEADER, case_key, partition_of, source_streams, stream_name
from shared.provenance import EventKeys
from shared.publishing import ConfirmingPublisher

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
            return 0
        messages = []
        published: list[tuple[str, int, str]] = []
        delivered = []  # stored events with messages for an inbox
        chains = {stream: dict(chain) for stream, chain in self.chains.items()}
        for notification in notifications:
            domain_event = self.app.mapper.to_domain_event(notification)
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
            inbox = self.app.inbox_messages(domain_event)
            if inbox:
                messages.extend(inbox)
                delivered.append(domain_event)
        self.publisher.publish(messages)
        # Confirmed: the inboxes took them. Receipts are saved with the position, once.
        receipts = self.app.inbox_receipts(delivered) if delivered else []
        for key, position, correlation_id in published:
            with log_context(correlation_id=correlation_id):
                log.info("published %s at %s", key, position, extra={"position": position})
        last = notifications[-1].id
        if self.durable_position:
            moved = {
                stream: {kind: at for kind, at in chain.items() if self.chains[stream].get(kind) != at}
                for stream, chain in chains.items()
            }

            def write_chains(cur: Any) -> None:
                for stream, kinds in moved.items():
                    self.app.write_relay_chain(cur, stream, kinds)

            self.app.save_tracked(Tracking(POSITION, last), *receipts, write=write_chains)
        elif receipts:
            self.app.save_tracked(None, *receipts)
        self.chains = chains
        self._position = last
        self.last_progress = time.monotonic()
        return len(notifications)

    def signed(self, message: OutgoingMessage) -> OutgoingMessage:
        signature = self.keys.sign(self.source, message.body)
        return dataclasses.replace(message, headers={**message.headers, **signature.headers()})


class PgLease:
    """Leadership by a session advisory lock on a dedicated connection."""

    def __init__(self, datastore: PgDatastore, name: str):
        self.datastore = datastore
        self.key = zlib.crc32(f"{datastore.schema}:{name}".encode())
        self._conn: Any = None
        self._held = False

    def acquire(self) -> bool:
        """True while this process holds the lease (checked on every call: a dropped
        connection loses the lock, and another replica may take over)."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self.datastore._connect()
                self._conn.autocommit = True
                self._held = False
            with self._conn.cursor() as cur:
                if self._held:
                    cur.execute("SELECT 1")
                    return True
                cur.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                self._held = bool(cur.fetchone()[0])
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


class AlwaysLeader:
    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


class RelayLoop:
    """Keeps one application's outbox published while its service runs.

    Publishes only while it holds the lease (one publisher per application: a PostgreSQL
    advisory lock; other replicas stand by), wakes on every save or after the relay interval,
    and backs off while the broker or the store is down. The service's ApplicationProvider
    runs it in a managed thread and stops it with the container.
    """

    #: A relay with events waiting that has not published for this long is reported stuck.
    STUCK_AFTER = 60.0

    def __init__(self, app: KetenApplication, source: str, settings: Settings):
        self.app = app
        self.source = source
        self.settings = settings
        self.relay: EventRelay | None = None
        self._wake = threading.Event()
        self._stopping = False
        app.on_save(self._wake.set)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

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
        backoff = 0.5
        while not self._stopping:
            leading = lease.acquire()
            metrics.relay_leader.labels(source).set(1 if leading else 0)
            if not leading:
                self.relay = None  # another replica relays; stand by
                with contextlib.suppress(KeyError):  # the leader's lag is the one that counts
                    metrics.relay_lag.remove(source)
                self._sleep(2.0)
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
                published = self.relay.publish_pending()
                if published:
                    metrics.events_published.labels(source).inc(published)
                metrics.relay_lag.labels(source).set(self.relay.lag())
                backoff = 0.5
                if published < settings.relay_batch_size:
                    self._sleep(settings.relay_interval)
            except Exception as exc:
                log.warning("%s relay: %s; retrying in %.1fs", source, type(exc).__name__, backoff)
                publisher.close()
                with contextlib.suppress(Exception):  # the store may be what is down
                    if self.relay is not None:
                        metrics.relay_lag.labels(source).set(self.relay.lag())
                self._wake.wait(timeout=backoff)
                backoff = min(backoff * 2, 10.0)
        publisher.close()
        lease.release()
        metrics.relay_leader.labels(source).set(0)

    def _sleep(self, seconds: float) -> None:
        """Until the next save, the stop, or ``seconds``."""
        self._wake.wait(timeout=seconds)
        self._wake.clear()
