"""Consuming other services' events: proven, in order, exactly once in effect, never dropped
silently.

A service marks handlers with ``@consumes(source, event_name)``. One ``EventConsumer`` per
service container consumes the service's quorum queue ``keten.<service>.events`` and handles
one message at a time, in queue order (so per upstream, in notification-log order):

1. not signed by a Keten service's key (``shared.provenance``), or signed by another service than
   its ``source``: dead-lettered (``unsigned``, ``bad_signature``), acked, nothing else is read;
2. not JSON, fails its schema, unknown version or event: dead-lettered with the reason, acked;
3. at or below the position this service reached in the event's stream: acked as a duplicate if
   it is the event taken at that position (same message id and digest), otherwise
   dead-lettered as a ``conflict`` (a restored-from-backup upstream, or a forger with the key);
4. the event's ``previous`` says where this service must stand to take it next (the latest
   earlier event of the kinds it takes). If it stands there, the handler runs. If it stands
   before that, there is a gap: the missing events are fetched from the upstream's own log
   (``shared.catchup``, a signed page over RPC) and applied in order, then the event. If the
   upstream cannot answer, the stream is held (``keten_consumer_held``, not ready) and the
   message retried; if the upstream's log disagrees with the event's chain, a ``conflict``;
5. the handler runs in a nameko worker; it saves its effects together with the tracking record
   (``KetenApplication.save_tracked`` / ``write_tracked``), which also records the event's id
   and digest at its position, so a concurrent duplicate fails as a whole with
   ``IntegrityError``; a handler that took the event without saving anything gets the tracking
   record written for it;
6. ``MessageRejected`` from the handler (the event cannot apply here, e.g. about a case this
   service never heard of): dead-lettered with the reason code, and the position recorded as
   taken (``rejected:<code>``), so the stream goes on;
7. an infrastructure failure (database or broker unreachable): the message is held and retried
   with backoff, indefinitely, because skipping it would break the order; the service reports
   itself not ready meanwhile;
8. any other error (a bug): retried a few times, then dead-lettered with the error class and
   the position recorded as taken (``failed``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import socket
import time
from collections.abc import Callable
from typing import Any

import eventlet
from eventlet.event import Event
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError
from kombu import Connection, Queue
from kombu.mixins import ConsumerMixin
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint, ProviderCollector, SharedExtension

from shared import logs, metrics, tracing
from shared.catchup import CatchUpConflict, CatchUpUnavailable, PageRequest, read_page
from shared.contracts.envelope import OutgoingMessage, ReceivedEvent, decode_event
from shared.contracts.events import EVENT_SCHEMAS
from shared.dependencies import ApplicationProvider, settings_from
from shared.errors import KetenError, NotAuthorised, ServiceUnavailable
from shared.partitions import preferred, stream_name
from shared.provenance import KEY_ID_HEADER, SIGNATURE_HEADER, EventKeys
from shared.publishing import ConfirmingPublisher
from shared.topology import (
    DEAD_LETTER_EXCHANGE,
    dead_letter_exchange,
    routing_key,
    service_event_queue,
    service_event_queues,
)

log = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    socket.error,
    TimeoutError,
    ServiceUnavailable,
)
BUG_RETRIES = 3
#: Seconds to wait for one more message already on its way when collecting a batch.
BATCH_WAIT = 0.001
#: "Up to the upstream's newest event", for a look at its log that no event started.
NEWEST = 2**62


class MessageRejected(KetenError):
    """Raised by a handler when an event cannot apply here; it is dead-lettered with the code."""


class EventConflict(KetenError):
    """An event claims a place in its stream that another event holds, or a chain of positions
    that disagrees with what this service took: dead-lettered as ``conflict``, never applied."""

    def __init__(self, message: str):
        super().__init__("conflict", message)


class QueueConsumer(ConsumerMixin):
    """One of the service's queues, consumed by kombu in a managed thread of its nameko
    container, one message at a time; ``publisher`` declares the platform's topology on every
    (re)connect and publishes what handling a message sends (dead letters, answers)."""

    #: What the thread consumes, for its name and the logs.
    consumes = "messages"

    def _init_consumer(self) -> None:
        self._ready = Event()
        self._gt: Any = None
        self.publisher: ConfirmingPublisher | None = None
        self.connected = False
        self._live_connection: Any = None
        self.should_stop = False
        #: Messages delivered by the current turn of the consume loop, not yet handled.
        self._delivered: list[Any] = []
        #: The consumer of the queues this replica stands by for, until it subscribes.
        self._standby: Any = None
        self._standby_at = 0.0

    def _setup_consumer(self, container: Any) -> None:
        self.settings = settings_from(container.config)
        self.service = container.service_name
        self.connection = Connection(self.settings.amqp_uri, heartbeat=30)

    def queue(self) -> Queue:
        raise NotImplementedError

    def on_message(self, message: Any) -> None:
        raise NotImplementedError

    def on_batch(self, messages: list[Any]) -> None:
        """Handles the messages delivered at once (up to the prefetch), in order; by default
        one at a time. A message left unsettled (the service stopping) goes back to the queue
        with the connection."""
        for message in messages:
            if self.should_stop:
                return
            self.on_message(message)

    def ack_all(self, messages: list[Any]) -> None:
        """Acknowledges ``messages`` (delivered in this order on one channel): on AMQP with one
        ``ack(multiple=True)`` of the last, elsewhere (the in-process broker) one by one."""
        if not messages:
            return
        if self.connection.transport.driver_type == "amqp":
            messages[-1].ack(multiple=True)
        else:
            for message in messages:
                message.ack()

    @property
    def batch_size(self) -> int:
        return max(1, min(self.settings.consumer_batch, self.settings.consumer_prefetch))

    def _deliver(self, message: Any) -> None:
        self._delivered.append(message)

    def consume(self, limit: Any = None, timeout: Any = None, safety_interval: float = 1, **kw: Any) -> Any:
        """kombu's consume loop, but the messages already delivered (up to the prefetch) are
        handed over together (``on_batch``): one transaction, one acknowledgement for them."""
        with self.consumer_context(**kw) as (conn, _channel, _consumers):
            while not self.should_stop:
                self.on_iteration()
                try:
                    conn.drain_events(timeout=safety_interval)
                except TimeoutError:
                    conn.heartbeat_check()
                    continue
                except OSError:
                    if not self.should_stop:
                        raise
                    break
                # What else is already here, without waiting for more.
                while len(self._delivered) < self.batch_size:
                    try:
                        conn.drain_events(timeout=BATCH_WAIT)
                    except TimeoutError:
                        break
                batch, self._delivered = self._delivered, []
                if batch:
                    self.on_batch(batch)
                yield

    def start_consuming(self, container: Any) -> None:
        if self._gt is None:
            self.should_stop = False
            self.publisher = ConfirmingPublisher(
                self.settings.amqp_uri, partitions=self.settings.event_partitions
            )
            self._gt = container.spawn_managed_thread(self.run, identifier=f"{self.service}.{self.consumes}")
        try:
            self.wait_until_consuming(timeout=15)
        except eventlet.Timeout:
            log.warning(
                "%s: not consuming %s yet (broker unreachable?); will keep trying",
                self.service,
                self.consumes,
            )

    def stop_consuming(self) -> None:
        self.should_stop = True
        if self._gt is not None:
            with contextlib.suppress(Exception):  # the thread is gone either way
                self._gt.wait()
            self._gt = None
        if self.publisher is not None:
            self.publisher.close()

    def kill(self) -> None:
        self.should_stop = True
        if self._gt is not None:
            self._gt.kill()
            self._gt = None

    @property
    def consuming(self) -> bool:
        return self._ready.ready() and self.connected

    def wait_until_consuming(self, timeout: float = 10.0) -> None:
        if self._ready.ready():
            return
        with eventlet.Timeout(timeout):
            self._ready.wait()

    # -- kombu ConsumerMixin ------------------------------------------------------------
    def on_connection_revived(self) -> None:
        # Declare the platform's topology (idempotent) before consuming: the dead-letter queue
        # must exist before the first message is rejected to it.
        assert self.publisher is not None
        self.publisher.close()
        self.publisher.connect()
        # Messages delivered on the lost channel come again: none of them may be acked on this one.
        self._delivered = []

    def queues(self, channel: Any) -> list[Queue]:
        """The queues consumed at once; ``standby_queues`` follow after the standby delay."""
        return [self.queue()]

    def standby_queues(self, taken: list[Queue]) -> list[Queue]:
        return []

    def get_consumers(self, consumer_cls: Callable[..., Any], channel: Any) -> list[Any]:
        # on_message: kombu hands over the raw message; decoding is ours, so that a body that
        # is not JSON is dead-lettered with a reason instead of failing inside kombu.
        first = self.queues(channel)
        consumer = consumer_cls(queues=first, on_message=self._deliver, no_ack=False)
        consumer.qos(prefetch_count=self.settings.consumer_prefetch)
        standby = self.standby_queues(first)
        self._standby = None
        if standby:
            # Subscribed later (``start_standby``): the broker makes a queue's first subscriber
            # its single active consumer, so each replica is first on the partitions it prefers.
            self._standby = consumer_cls(
                queues=standby, on_message=self._deliver, no_ack=False, auto_declare=True
            )
            self._standby_at = time.monotonic() + self.settings.standby_delay
        return [consumer]

    def start_standby(self) -> None:
        """Stands by for the other replicas' partitions, once the standby delay is over."""
        if self._standby is not None and time.monotonic() >= self._standby_at:
            standby, self._standby = self._standby, None
            standby.consume()

    def on_consume_ready(self, connection: Any, channel: Any, consumers: Any, **kwargs: Any) -> None:
        self._live_connection = connection
        self.connected = True
        if not self._ready.ready():
            self._ready.send(None)

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        self.connected = False
        log.warning(
            "%s %s: broker unreachable (%s); retrying in %ss",
            self.service,
            self.consumes,
            type(exc).__name__,
            interval,
        )


class EventConsumer(SharedExtension, ProviderCollector, QueueConsumer):
    consumes = "events"

    def __init__(self) -> None:
        super().__init__()
        self._init_consumer()
        self.healthy = True
        #: The upstream whose stream is held (a gap that cannot be caught up now), if any.
        self.held: str | None = None
        self._rpc_proxy: Any = None
        self._rpc: Any = None
        self._next_sweep: float | None = None
        #: Whether a batch is open: a handler's failure then abandons the batch (see ``on_batch``).
        self._batching = False

    # -- nameko lifecycle ---------------------------------------------------------------
    def setup(self) -> None:
        self._setup_consumer(self.container)
        sources = {schema.source for schema in EVENT_SCHEMAS.values()}
        self.keys = EventKeys.for_settings(self.settings).know(*sources)

    def start(self) -> None:
        if self._gt is None:
            metrics.consumer_blocked.labels(self.service).set(0)
        self.start_consuming(self.container)

    def stop(self) -> None:
        self.stop_consuming()
        self._close_rpc()
        super().stop()

    def kill(self) -> None:
        super().kill()
        self._close_rpc()

    @property
    def handlers(self) -> dict[str, EventHandlerEntrypoint]:
        return {provider.routing_key: provider for provider in self._providers}

    def application(self) -> Any:
        for dependency in self.container.dependencies:
            if isinstance(dependency, ApplicationProvider):
                return dependency.app
        raise RuntimeError(f"service {self.service} handles events but has no ApplicationProvider")

    def queue(self) -> Queue:
        # The bindings come from the platform's topology (SUBSCRIPTIONS), which publishers
        # declare too; a test checks that they match the handlers.
        return service_event_queue(self.service)

    def queues(self, channel: Any) -> list[Queue]:
        """The service's queue, or the queues of the partitions this replica prefers: by its
        index (``KETEN_REPLICA``), or, without one (a Deployment's pods), a fair share
        (partitions / ``KETEN_REPLICAS``) of those no replica consumes yet, picked at random
        so that replicas starting together seldom pick the same."""
        partitions = self.settings.event_partitions
        queues = service_event_queues(self.service, partitions)
        if partitions <= 1:
            return queues
        if self.settings.replica >= 0:
            return [queues[n] for n in preferred(partitions, self.settings.replica, self.settings.replicas)]
        share = -(-partitions // max(1, self.settings.replicas))
        free = [queue for queue in queues if queue(channel).queue_declare().consumer_count == 0]
        return sorted(random.sample(free, min(share, len(free))), key=queues.index)

    def standby_queues(self, taken: list[Queue]) -> list[Queue]:
        """The other replicas' partitions: taken only while their replica is gone."""
        mine = {queue.name for queue in taken}
        queues = service_event_queues(self.service, self.settings.event_partitions)
        return [queue for queue in queues if queue.name not in mine]

    def status(self) -> str:
        """ "ok" while consuming (or standing by for the queue's single active consumer)."""
        if not self.consuming:
            return "waiting"
        if self.held is not None:
            return "held"
        return "ok" if self.healthy else "blocked"

    def health_report(self) -> tuple[dict[str, Any], bool]:
        status = self.status()
        report: dict[str, Any] = {"consumer": status}
        if status == "held":
            report["held_upstream"] = self.held
        return report, status == "ok"

    # -- processing ---------------------------------------------------------------------
    def on_batch(self, messages: list[Any]) -> None:
        """Takes the delivered messages in one transaction of the store (one tracking record
        per stream, the events table locked once) and acknowledges them with one ack.

        Whatever a batch cannot settle on its own (a handler that rejects or fails, a gap the
        upstream must fill, a conflict, an outage, the service stopping) abandons it: the
        transaction is rolled back, nothing of it is acknowledged, and its messages are taken
        again one at a time, each with its own dead letter, holds and retries. So a poison
        message costs its batch a second pass, never its neighbours' effects. Batches need a
        store that takes them (PostgreSQL); elsewhere, one message at a time."""
        app = self.application()
        if len(messages) == 1 or not app.batches or self.held is not None or not self.healthy:
            super().on_batch(messages)
            return
        started = time.perf_counter()
        rejected: list[tuple[Any, KetenError]] = []
        taken: list[tuple[ReceivedEvent, str, str]] = []
        try:
            self._batching = True
            with app.batch():
                for message in messages:
                    try:
                        event = self.verified(message)
                    except KetenError as error:
                        rejected.append((message, error))
                        continue
                    handler = self.handlers.get(event.routing_key)
                    if handler is None:
                        raise ContainerBeingKilled()  # stopping, or nothing handles it now: singly
                    kinds = self.kinds_of(event.source)
                    with logs.log_context(self.service, event.correlation_id):
                        taken.append((event, self.take(handler, event, message, kinds), handler.method_name))
        except Exception as exc:
            log.info(
                "%s: a batch of %d message(s) taken one at a time (%s)",
                self.service,
                len(messages),
                type(exc).__name__,
            )
            super().on_batch(messages)
            return
        finally:
            self._batching = False
        for message, refusal in rejected:
            with logs.log_context(self.service):
                self.dead_letter(message, refusal.code, str(refusal), event_name=None)
        self.ack_all(messages)
        seconds = (time.perf_counter() - started) / len(messages)
        for event, outcome, _ in taken:
            metrics.count_handled(self.service, event.name, outcome, seconds)
        if not log.isEnabledFor(logging.INFO):
            return  # the lines below would be made only to be dropped
        for event, outcome, method_name in taken:
            # A line per message, under its correlation id, as when taken singly: an operator
            # follows one share through every service's log whatever batch it came in.
            with logs.log_context(self.service, event.correlation_id):
                log.info(
                    "%s %s from %s at %s: %s in a batch of %d",
                    method_name,
                    event.name,
                    event.source,
                    event.position,
                    outcome,
                    len(messages),
                    extra={**_taken_fields(event, outcome), "batch": len(messages)},
                )
        log.info(
            "%s: took a batch of %d message(s) in %.1f ms",
            self.service,
            len(messages),
            seconds * len(messages) * 1000,
            extra={
                "batch": len(messages),
                "streams": sorted({event.log for event, _, _ in taken}),
                "duration_ms": round(seconds * len(messages) * 1000, 1),
            },
        )

    def kinds_of(self, source: str) -> tuple[str, ...]:
        """The kinds of event of ``source`` this service takes."""
        return tuple(sorted(h.event_name for h in self.handlers.values() if h.source == source))

    def on_message(self, message: Any) -> None:
        started = time.perf_counter()
        try:
            event = self.verified(message)
        except KetenError as error:
            with logs.log_context(self.service):
                self.dead_letter(message, error.code, str(error), event_name=None)
            message.ack()
            return
        handlers = self.handlers
        if not handlers:
            # The service is stopping (its entrypoints go first): leave the message unacked, so
            # it returns to the queue with the connection, and stop taking more.
            self.should_stop = True
            return
        handler = handlers.get(event.routing_key)
        if handler is None:
            # Bound by an older version of this service; nothing handles it now.
            message.ack()
            return
        kinds = self.kinds_of(event.source)
        with logs.log_context(self.service, event.correlation_id):
            outcome = self.process(handler, event, message, kinds)
            if outcome != "requeued" and not self.healthy:
                self.healthy = True
                metrics.consumer_blocked.labels(self.service).set(0)
            seconds = time.perf_counter() - started
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s from %s at %s: %s in %.1f ms",
                    handler.method_name,
                    event.name,
                    event.source,
                    event.position,
                    outcome,
                    seconds * 1000,
                    extra={**_taken_fields(event, outcome), "duration_ms": round(seconds * 1000, 1)},
                )
        metrics.count_handled(self.service, event.name, outcome, seconds)

    def verified(self, message: Any) -> ReceivedEvent[Any]:
        """The event in ``message`` once its signature verifies as its source's; raises the
        ``KetenError`` it is dead-lettered with otherwise."""
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        headers = message.headers or {}
        signer = self.keys.signer(headers.get(KEY_ID_HEADER), headers.get(SIGNATURE_HEADER), body)
        event = decode_event(body)
        if event.source != signer:
            raise NotAuthorised("bad_signature", "the event is signed by another service than its source")
        traceparent = tracing.valid_traceparent(headers.get(tracing.TRACEPARENT))
        return dataclasses.replace(event, traceparent=traceparent) if traceparent else event

    def process(
        self, handler: EventHandlerEntrypoint, event: ReceivedEvent, message: Any, kinds: tuple[str, ...]
    ) -> str:
        attempts = 0
        collisions = 0
        delay = 0.2
        while not self.should_stop:
            attempts += 1
            try:
                outcome = self.take(handler, event, message, kinds)
            except IntegrityError:
                # Taken concurrently in the meantime: look again (a duplicate, or a conflict).
                collisions += 1
                if collisions < 3:
                    continue
                message.ack()
                return "duplicate"
            except ContainerBeingKilled:
                message.requeue()
                return "requeued"
            except EventConflict as conflict:
                self.dead_letter(message, conflict.code, str(conflict), event_name=event.name)
                message.ack()
                return "conflict"
            except CatchUpUnavailable as exc:
                if self.held is None:
                    log.warning(
                        "%s: holding %s: a gap before %s cannot be caught up now (%s); retrying",
                        self.service,
                        event.log,
                        event.position,
                        exc.code,
                    )
                self.held = event.source
                metrics.consumer_held.labels(self.service, event.source).set(1)
            except TRANSIENT_ERRORS as exc:
                self.healthy = False
                metrics.consumer_blocked.labels(self.service).set(1)
                log.warning(
                    "%s: %s holding %s at %s/%s: %s; retrying in %.1fs",
                    self.service,
                    handler.method_name,
                    event.name,
                    event.source,
                    event.position,
                    type(exc).__name__,
                    delay,
                )
            except Exception as exc:
                # A bug outside the handler (which has its own retries): as before, a few tries.
                if attempts >= BUG_RETRIES:
                    failure = type(exc).__name__
                    log.error("%s: taking %s failed (%s); dead-lettered", self.service, event.name, failure)
                    self.dead_letter(message, "handler_failed", f"handler raised {failure}", event.name)
                    message.ack()
                    return "failed"
            else:
                if self.held is not None:
                    metrics.consumer_held.labels(self.service, self.held).set(0)
                    self.held = None
                message.ack()
                return outcome
            self._pause(delay)
            delay = min(delay * 2, 30.0)
        message.requeue()
        return "requeued"

    # -- order ------------------------------------------------------------------------------------
    def take(
        self, handler: EventHandlerEntrypoint, event: ReceivedEvent, message: Any, kinds: tuple[str, ...]
    ) -> str:
        """Takes ``event`` if it is next in its stream (``kinds``: those of its source this
        service takes), after catching up a gap before it."""
        app = self.application()
        reached = app.taken_position(event.log)
        expected = event.expected_position(kinds)
        if (event.position <= reached or expected != reached) and app.forget_taken(event.log):
            # Not simply next after what this process knew: decided on what the store says.
            reached = app.taken_position(event.log)
        if event.position <= reached:
            return self.duplicate_or_conflict(app, event)
        if expected is not None and expected < reached:
            if not self.no_longer_taken(app, event.log, expected, reached, kinds):
                raise EventConflict(f"the event's chain skips positions this service took from {event.log}")
            # The last one taken is of a kind this service no longer takes: this one is next.
        elif expected != reached:
            self.catch_up(event, kinds, reached)
            reached = app.taken_position(event.log)
            if expected is not None and expected != reached:
                raise EventConflict(f"{event.source}'s log does not hold the events this one follows")
        return self.apply(handler, event, message)

    @staticmethod
    def no_longer_taken(app: Any, stream: str, expected: int, reached: int, kinds: tuple[str, ...]) -> bool:
        """Whether every event taken after ``expected`` (up to ``reached``) is of a kind this
        service no longer takes (a release dropped its handler): then a chain that skips them
        is no conflict."""
        taken = app.received_kinds(stream, expected, reached)
        return bool(taken) and app.received(stream, reached) is not None and not set(taken) & set(kinds)

    def duplicate_or_conflict(self, app: Any, event: ReceivedEvent) -> str:
        taken = app.received(event.log, event.position)
        if taken is not None and taken[1:] == (str(event.message_id), event.digest):
            return "duplicate"
        if taken is None:
            first = app.first_received(event.log)
            if first is None or event.position < first:
                return "duplicate"  # taken before this service kept a record of each position
        raise EventConflict(f"another event was taken at this position of {event.log}")

    def catch_up(self, event: ReceivedEvent, kinds: tuple[str, ...], reached: int) -> None:
        """Applies, in order, the events of ``kinds`` in ``event``'s stream between ``reached``
        and the event, fetched from the upstream's log; raises ``CatchUpUnavailable`` or
        ``EventConflict``."""
        caught = self.fetch_and_apply(event.source, event.log, kinds, reached, before=event.position)
        log.warning(
            "%s: caught up %d event(s) of %s between %s and %s from its log",
            self.service,
            caught,
            event.log,
            reached,
            event.position,
            extra={"source": event.source, "position": event.position},
        )

    def fetch_and_apply(
        self, source: str, stream: str, kinds: tuple[str, ...], reached: int, before: int | None = None
    ) -> int:
        """Applies the events of ``kinds`` after ``reached`` (and before ``before``, or up to the
        newest) from ``source``'s log, page by page; returns how many."""
        app = self.application()
        after = reached
        caught = 0
        while True:
            asked = PageRequest(stream=stream, after=after, before=before or NEWEST, kinds=kinds)
            page = read_page(self.keys, source, asked, self.ask_upstream(source, asked))
            for missed, body in page.events:
                if missed.position <= app.taken_position(stream):
                    continue
                handler = self.handlers.get(missed.routing_key)
                if handler is None:
                    raise ContainerBeingKilled()  # stopping: the message goes back to the queue
                with logs.log_context(self.service, missed.correlation_id):
                    self.apply(handler, missed, CaughtUpMessage.of(missed, body))
                caught += 1
                metrics.events_caught_up.labels(self.service, source).inc()
            if before is not None and page.until >= before - 1:
                return caught
            if page.until <= after:
                if before is None:
                    return caught  # the upstream's newest: nothing more
                raise EventConflict(f"{source}'s log does not reach the events this one follows")
            after = page.until

    # -- the periodic look at the upstreams' logs ---------------------------------------------------
    def on_iteration(self) -> None:
        """Between messages (kombu calls this on every turn of the consume loop): now and then,
        ask each upstream for events this service has not taken. A gap is otherwise found only
        when the next event arrives; this finds the missing tail of a quiet stream too."""
        self.start_standby()
        interval = self.settings.catch_up_interval
        if interval <= 0:
            return
        now = time.monotonic()
        if self._next_sweep is None:
            self._next_sweep = now + interval
        if now < self._next_sweep or self.should_stop:
            return
        self._next_sweep = now + interval
        for source in sorted({handler.source for handler in self.handlers.values()}):
            for stream in self.swept_streams(source):
                try:
                    # From where the store says: another replica may have taken it since.
                    self.application().forget_taken(stream)
                    position = self.application().taken_position(stream)
                    caught = self.fetch_and_apply(source, stream, self.kinds_of(source), position)
                except (*TRANSIENT_ERRORS, EventConflict, IntegrityError, ContainerBeingKilled) as exc:
                    log.info("%s: no look at %s's log now (%s)", self.service, stream, type(exc).__name__)
                    continue
                if caught:
                    log.warning(
                        "%s: caught up %d event(s) of %s that no message announced",
                        self.service,
                        caught,
                        stream,
                    )

    def swept_streams(self, source: str) -> list[str]:
        """The streams of ``source`` the periodic look covers: its whole log, or the partitions
        this replica prefers and has taken from before (a partition never taken from may be
        new since the partitions changed: its events were taken under the former streams)."""
        partitions = self.settings.event_partitions
        if partitions <= 1:
            return [source]
        streams = [stream_name(source, n, partitions) for n in range(partitions)]
        # Each replica looks at every partition it has taken from: a look at one another
        # replica is taking collides harmlessly (the tracking record refuses the second).
        return [stream for stream in streams if self.application().position(stream) > 0]

    def ask_upstream(self, source: str, asked: PageRequest) -> Any:
        from nameko.standalone.rpc import ClusterRpcProxy

        try:
            if self._rpc is None:
                self._rpc_proxy = ClusterRpcProxy(self.container.config, timeout=self.settings.rpc_timeout)
                self._rpc = self._rpc_proxy.start()
            return getattr(self._rpc, source).published_events(asked.as_dict())
        except CatchUpConflict as conflict:
            raise EventConflict(conflict.message) from None
        except Exception as exc:
            self._close_rpc()
            raise CatchUpUnavailable(
                "catch_up_unavailable", f"{source} did not serve the missing events ({type(exc).__name__})"
            ) from None

    def _close_rpc(self) -> None:
        if self._rpc_proxy is not None:
            with contextlib.suppress(Exception):  # a proxy on a dead connection
                self._rpc_proxy.stop()
        self._rpc_proxy = self._rpc = None

    # -- taking one event --------------------------------------------------------------------------
    def apply(self, handler: EventHandlerEntrypoint, event: ReceivedEvent, message: Any) -> str:
        """Runs the handler for an event that is next in its stream and records that it was
        taken: processed, rejected (dead-lettered with its code) or failed (a bug)."""
        app = self.application()
        attempts = 0
        while True:
            attempts += 1
            try:
                handler.run(event)
            except (*TRANSIENT_ERRORS, IntegrityError, ContainerBeingKilled):
                raise
            except Exception as exc:
                if self._batching:
                    raise  # the batch is abandoned and this message taken again on its own
                error = exc
            else:
                if app.last_taken != (event.log, event.position):
                    self.record(app, event, "processed")  # the handler had nothing to save
                return "processed"
            if isinstance(error, KetenError):
                self.dead_letter(message, error.code, str(error), event_name=event.name)
                self.record(app, event, f"rejected:{error.code}")
                return "rejected"
            if attempts < BUG_RETRIES:
                self._pause(0.2 * attempts)
                continue
            log.error(
                "%s: %s failed on %s at %s/%s (%s); dead-lettered",
                self.service,
                handler.method_name,
                event.name,
                event.source,
                event.position,
                type(error).__name__,
            )
            failure = f"handler raised {type(error).__name__}"
            self.dead_letter(message, "handler_failed", failure, event.name)
            self.record(app, event, "failed")
            return "failed"

    @staticmethod
    def record(app: Any, event: ReceivedEvent, outcome: str) -> None:
        app.save_tracked(dataclasses.replace(event.tracking, outcome=outcome))

    def _pause(self, seconds: float) -> None:
        """Sleeps without starving the broker connection of heartbeats."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.should_stop:
            eventlet.sleep(min(1.0, deadline - time.monotonic()))
            try:
                if self._live_connection is not None:
                    self._live_connection.heartbeat_check()
            except Exception:  # noqa: S110 - a dead connection is found by the consume loop
                pass

    def dead_letter(self, message: Any, code: str, reason: str, event_name: str | None) -> None:
        """Publishes the message, untouched, to ``keten.dead-letter`` with the reason in headers."""
        metrics.dead_letters.labels(self.service, code).inc()
        log.warning(
            "%s: dead-lettered a message from %s: %s (%s)",
            self.service,
            message.delivery_info.get("routing_key"),
            code,
            reason,
            extra={"reason_code": code},
        )
        assert self.publisher is not None
        self.publisher.publish(
            [dead_letter_message(message, self.service, code, reason, event_name)],
            exchange=dead_letter_exchange,
        )


def dead_letter_message(
    message: Any,
    service: str,
    code: str,
    reason: str,
    name: str | None,
    body: bytes | None = None,
    content_type: str | None = None,
) -> OutgoingMessage:
    """A received message as a dead letter: its headers plus the reason, routing key
    ``<service>.<name>``; its own body unless another (e.g. sealed) is given."""
    headers = dict(message.headers or {})
    headers.update(
        {
            "x-keten-reason-code": code,
            "x-keten-reason": reason[:500].encode("utf-8", "replace").decode(),
            "x-keten-service": service,
            "x-keten-original-routing-key": message.delivery_info.get("routing_key", ""),
        }
    )
    if body is None:
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
    return OutgoingMessage(
        routing_key=f"{service}.{name or 'unreadable'}",
        body=body,
        headers=headers,
        message_id=str(message.properties.get("message_id") or ""),
        content_type=content_type or message.content_type or "application/octet-stream",
        content_encoding=(message.content_encoding or "binary") if content_type is None else "utf-8",
    )


@dataclasses.dataclass(frozen=True)
class CaughtUpMessage:
    """An event fetched from its upstream's log, dressed as the message it would have been
    (for a dead letter, should the handler reject it)."""

    body: bytes
    headers: dict[str, Any]
    delivery_info: dict[str, Any]
    properties: dict[str, Any]
    content_type: str = "application/json"
    content_encoding: str = "utf-8"

    @classmethod
    def of(cls, event: ReceivedEvent, body: bytes) -> CaughtUpMessage:
        return cls(
            body=body,
            headers={"keten-caught-up": True},
            delivery_info={"routing_key": event.routing_key},
            properties={"message_id": str(event.message_id)},
        )


class EventHandlerEntrypoint(Entrypoint):
    consumer = EventConsumer()
    #: Its workers save inside the consumer's open batch (``ApplicationProvider.worker_setup``).
    joins_batch = True

    def __init__(self, source: str, event_name: str, **kwargs: Any):
        self.source = source
        self.event_name = event_name
        super().__init__(**kwargs)

    @property
    def routing_key(self) -> str:
        return routing_key(self.source, self.event_name)

    def setup(self) -> None:
        self.consumer.register_provider(self)

    def stop(self) -> None:
        self.consumer.unregister_provider(self)

    def run(self, event: ReceivedEvent) -> Any:
        """Runs the handler in a worker and waits for it; re-raises what it raised."""
        return run_in_worker(self, event, event.correlation_id, tracing.from_platform(event.traceparent))


def run_in_worker(
    entrypoint: Entrypoint, argument: Any, correlation_id: str | None, trace: dict[str, str] | None = None
) -> Any:
    """Runs ``entrypoint``'s method with ``argument`` in a worker of its container (its
    dependencies injected, as for any call) and waits for it; re-raises what it raised.
    ``trace`` is the trace context the work continues (``shared.tracing``)."""
    done = Event()

    def handle_result(worker_ctx: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        done.send((result, exc_info))
        return result, exc_info

    context = {**(trace or {}), **({"correlation_id": correlation_id} if correlation_id else {})}
    entrypoint.container.spawn_worker(
        entrypoint, (argument,), {}, context_data=context, handle_result=handle_result
    )
    result, exc_info = done.wait()
    if exc_info is not None:
        raise exc_info[1]
    return result


consumes = EventHandlerEntrypoint.decorator
__all__ = ["DEAD_LETTER_EXCHANGE", "EventConsumer", "MessageRejected", "consumes", "dead_letter_message"]


def _taken_fields(event: ReceivedEvent[Any], outcome: str) -> dict[str, Any]:
    """The fields of a message's log line: which event, from where, and what became of it."""
    return {
        "event": event.name,
        "source": event.source,
        "stream": event.log,
        "position": event.position,
        "outcome": outcome,
    }
