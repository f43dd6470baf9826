"""The outbox relay: an application's notification log, published to ``keten.events``.

A service never publishes straight after ``save()``: a crash between the two would lose the
event. The notification log is the outbox. The relay reads what was stored after its position,
publishes it with publisher confirms, and only then moves its position (a tracking record in the
application's own store). A crash at any point means some events are published again; consumers
drop what they already processed (see ``shared.consumer``).

Only one relay per application publishes at a time: on PostgreSQL it holds an advisory lock
(other replicas stand by), on SQLite the store belongs to one process anyway. With the embedded
in-process broker, whose queues vanish with the process, the relay starts from the beginning of
the log at every start, and consumers' tracking drops what they already had.
"""

from __future__ import annotations

import contextlib
import logging
import time
import zlib
from typing import Any

from eventsourcing.persistence import Tracking

from shared.application import KetenApplication
from shared.contracts.envelope import correlation_of, encode_event
from shared.db import PgDatastore
from shared.logs import log_context
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
        self.last_progress = time.monotonic()

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
        for notification in notifications:
            domain_event = self.app.mapper.to_domain_event(notification)
            message = encode_event(domain_event, self.source, notification.id)
            if message is not None:
                messages.append(message)
                published.append((message.routing_key, notification.id, correlation_of(domain_event)))
            messages.extend(self.app.inbox_messages(domain_event))
        self.publisher.publish(messages)
        for key, position, correlation_id in published:
            with log_context(correlation_id=correlation_id):
                log.info("published %s at %s", key, position, extra={"position": position})
        last = notifications[-1].id
        if self.durable_position:
            self.app.process_recorder.insert_tracking(Tracking(POSITION, last))
        self._position = last
        self.last_progress = time.monotonic()
        return len(notifications)


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
