"""Consuming other services' events: in order, exactly once in effect, never dropped silently.

A service marks handlers with ``@consumes(source, event_name)``. One ``EventConsumer`` per
service container consumes the service's quorum queue ``keten.<service>.events`` and handles
one message at a time, in queue order (so per upstream, in notification-log order):

1. not JSON, fails its schema, unknown version or event: dead-lettered with the reason, acked;
2. already processed (its position is at or below the tracking record of its source in the
   service's store): acked, nothing runs;
3. the handler runs in a nameko worker; it saves its effects together with the tracking record
   (``KetenApplication.save_tracked`` / ``write_tracked``), so a concurrent duplicate fails as a
   whole with ``IntegrityError`` and is acked;
4. ``MessageRejected`` from the handler (the event cannot apply here, e.g. about a case this
   service never heard of): dead-lettered with the reason code, acked;
5. an infrastructure failure (database or broker unreachable): the message is held and retried
   with backoff, indefinitely, because skipping it would break the order; the service reports
   itself not ready meanwhile;
6. any other error (a bug): retried a few times, then dead-lettered with the error class.
"""

from __future__ import annotations

import contextlib
import logging
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

from shared import logs, metrics
from shared.contracts.envelope import OutgoingMessage, ReceivedEvent, decode_event
from shared.dependencies import ApplicationProvider, settings_from
from shared.errors import KetenError, ServiceUnavailable
from shared.publishing import ConfirmingPublisher
from shared.topology import DEAD_LETTER_EXCHANGE, dead_letter_exchange, routing_key, service_event_queue

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


class MessageRejected(KetenError):
    """Raised by a handler when an event cannot apply here; it is dead-lettered with the code."""


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

    def _setup_consumer(self, container: Any) -> None:
        self.settings = settings_from(container.config)
        self.service = container.service_name
        self.connection = Connection(self.settings.amqp_uri, heartbeat=30)

    def queue(self) -> Queue:
        raise NotImplementedError

    def on_message(self, message: Any) -> None:
        raise NotImplementedError

    def start_consuming(self, container: Any) -> None:
        if self._gt is None:
            self.should_stop = False
            self.publisher = ConfirmingPublisher(self.settings.amqp_uri)
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

    def get_consumers(self, consumer_cls: Callable[..., Any], channel: Any) -> list[Any]:
        # on_message: kombu hands over the raw message; decoding is ours, so that a body that
        # is not JSON is dead-lettered with a reason instead of failing inside kombu.
        consumer = consumer_cls(queues=[self.queue()], on_message=self.on_message, no_ack=False)
        consumer.qos(prefetch_count=self.settings.consumer_prefetch)
        return [consumer]

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

    # -- nameko lifecycle ---------------------------------------------------------------
    def setup(self) -> None:
        self._setup_consumer(self.container)

    def start(self) -> None:
        if self._gt is None:
            metrics.consumer_blocked.labels(self.service).set(0)
        self.start_consuming(self.container)

    def stop(self) -> None:
        self.stop_consuming()
        super().stop()

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

    def status(self) -> str:
        """ "ok" while consuming (or standing by for the queue's single active consumer)."""
        if not self.consuming:
            return "waiting"
        return "ok" if self.healthy else "blocked"

    def health_report(self) -> tuple[dict[str, Any], bool]:
        status = self.status()
        return {"consumer": status}, status == "ok"

    # -- processing ---------------------------------------------------------------------
    def on_message(self, message: Any) -> None:
        started = time.perf_counter()
        try:
            event = decode_event(message.body)
        except KetenError as error:
            with logs.log_context(self.service):
                self.dead_letter(message, error.code, str(error), event_name=None)
            message.ack()
            return
        handler = self.handlers.get(event.routing_key)
        if handler is None:
            # Bound by an older version of this service; nothing handles it now.
            message.ack()
            return
        with logs.log_context(self.service, event.correlation_id):
            outcome = self.process(handler, event, message)
            if outcome != "requeued" and not self.healthy:
                self.healthy = True
                metrics.consumer_blocked.labels(self.service).set(0)
            seconds = time.perf_counter() - started
            log.info(
                "%s %s from %s at %s: %s in %.1f ms",
                handler.method_name,
                event.name,
                event.source,
                event.position,
                outcome,
                seconds * 1000,
                extra={
                    "event": event.name,
                    "source": event.source,
                    "position": event.position,
                    "outcome": outcome,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
        metrics.messages_handled.labels(self.service, event.name, outcome).inc()
        metrics.handling_seconds.labels(self.service, event.name).observe(seconds)

    def process(self, handler: EventHandlerEntrypoint, event: ReceivedEvent, message: Any) -> str:
        app = self.application()
        attempts = 0
        delay = 0.2
        while not self.should_stop:
            attempts += 1
            try:
                if app.position(event.source) >= event.position:
                    message.ack()
                    return "duplicate"
                handler.run(event)
            except IntegrityError:
                message.ack()  # processed concurrently in the meantime: a duplicate
                return "duplicate"
            except ContainerBeingKilled:
                message.requeue()
                return "requeued"
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
            except KetenError as error:
                self.dead_letter(message, error.code, str(error), event_name=event.name)
                message.ack()
                return "rejected"
            except Exception as exc:
                if attempts >= BUG_RETRIES:
                    log.error(
                        "%s: %s failed on %s at %s/%s (%s); dead-lettered",
                        self.service,
                        handler.method_name,
                        event.name,
                        event.source,
                        event.position,
                        type(exc).__name__,
                    )
                    self.dead_letter(
                        message, "handler_failed", f"handler raised {type(exc).__name__}", event.name
                    )
                    message.ack()
                    return "failed"
            else:
                message.ack()
                return "processed"
            self._pause(delay)
            delay = min(delay * 2, 30.0)
        message.requeue()
        return "requeued"

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
            "%s: dead-lettered a message from %s: %s",
            self.service,
            message.delivery_info.get("routing_key"),
            code,
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


class EventHandlerEntrypoint(Entrypoint):
    consumer = EventConsumer()

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
        return run_in_worker(self, event, event.correlation_id)


def run_in_worker(entrypoint: Entrypoint, argument: Any, correlation_id: str | None) -> Any:
    """Runs ``entrypoint``'s method with ``argument`` in a worker of its container (its
    dependencies injected, as for any call) and waits for it; re-raises what it raised."""
    done = Event()

    def handle_result(worker_ctx: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        done.send((result, exc_info))
        return result, exc_info

    context = {"correlation_id": correlation_id} if correlation_id else {}
    entrypoint.container.spawn_worker(
        entrypoint, (argument,), {}, context_data=context, handle_result=handle_result
    )
    result, exc_info = done.wait()
    if exc_info is not None:
        raise exc_info[1]
    return result


consumes = EventHandlerEntrypoint.decorator
__all__ = ["DEAD_LETTER_EXCHANGE", "EventConsumer", "MessageRejected", "consumes", "dead_letter_message"]
