"""Publishing to RabbitMQ with publisher confirms, a batch at a time.

Waiting for each confirm in turn caps a publisher at about one round trip per message; here a
whole batch is published and then the broker's acks are awaited together, which is as safe (the
caller moves its position only after every message of the batch was confirmed) and much faster.
The in-process broker of the embedded platform has no confirms: a publish there is a call.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from amqp.exceptions import RecoverableConnectionError
from kombu import Connection, Exchange, Producer

from shared.contracts.envelope import OutgoingMessage
from shared.topology import declare_topology, events_exchange

log = logging.getLogger(__name__)


class PublishError(RecoverableConnectionError):
    """The broker did not confirm a batch; the caller must publish it again. A connection
    error, so that a consumer publishing what handling sends (a dead letter, an answer)
    reconnects and gets the unacknowledged message again instead of dying."""


class ConfirmingPublisher:
    """One connection and channel; ``publish`` returns once every message is confirmed."""

    # No heartbeats: nothing calls heartbeat_check between publishes, so the broker would close
    # an idle publisher's connection after two missed beats. A dead connection shows itself on
    # the next publish (a socket error, or no confirm within the timeout) and is reopened.
    def __init__(self, amqp_uri: str, confirm_timeout: float = 15.0, heartbeat: int = 0, partitions: int = 1):
        self.amqp_uri = amqp_uri
        #: The event partitions of the topology it declares (``shared.partitions``).
        self.partitions = partitions
        self.confirm_timeout = confirm_timeout
        self.heartbeat = heartbeat
        self.connection: Connection | None = None
        self.channel: Any = None
        self.producer: Producer | None = None
        self._uses_confirms = False
        self._next_tag = 1
        self._unconfirmed: set[int] = set()
        self._nacked = False

    def connect(self) -> None:
        if self.connection is not None and self.connection.connected:
            return
        self.close()
        self.connection = Connection(self.amqp_uri, heartbeat=self.heartbeat, connect_timeout=10)
        self.connection.ensure_connection(max_retries=1)
        self.channel = self.connection.channel()
        self._uses_confirms = hasattr(self.channel, "confirm_select")
        if self._uses_confirms:
            self.channel.confirm_select()
            self.channel.events["basic_ack"].add(self._on_ack)
            self.channel.events["basic_nack"].add(self._on_nack)
        self._next_tag = 1
        self._unconfirmed = set()
        self.producer = Producer(self.channel)
        # The in-process broker has no agencies connected: no inboxes to fill in memory.
        declare_topology(
            self.channel, inboxes=not self.amqp_uri.startswith("keten-memory"), partitions=self.partitions
        )

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True

    def publish(
        self,
        messages: Sequence[OutgoingMessage],
        exchange: Exchange | str = events_exchange,
    ) -> None:
        if not messages:
            return
        self.connect()
        assert self.producer is not None
        self._nacked = False
        try:
            self._publish_all(messages, exchange)
        except Exception:
            self.close()  # a half-sent batch on a broken connection: the next call reconnects
            raise
        if self._uses_confirms:
            self._wait_for_confirms()

    def _publish_all(self, messages: Sequence[OutgoingMessage], exchange: Exchange | str) -> None:
        with self._one_write():
            self._publish_each(messages, exchange)

    @contextlib.contextmanager
    def _one_write(self) -> Iterator[None]:
        """The frames of a batch's messages go to the socket in one write at its end, not one
        write (a system call and a switch through the hub) per message. They are the same bytes
        in the same order; a batch that fails half-way closes the connection either way
        (``publish``), and the broker has confirmed nothing of it then."""
        assert self.connection is not None
        amqp_connection = self.connection.connection  # kombu's, then py-amqp's
        transport: Any = getattr(amqp_connection, "transport", None)
        write = getattr(transport, "_write", None)  # py-amqp's plain TCP transport: the socket's sendall
        if (
            write is None
            or getattr(write, "__self__", None) is not getattr(transport, "sock", None)
            # py-amqp's own confirm mode waits for each message's confirm: it must be sent first.
            or getattr(amqp_connection, "confirm_publish", False)
        ):
            yield  # another transport (the in-process broker, TLS): as it writes
            return
        frames: list[bytes] = []
        transport._write = lambda data: frames.append(bytes(data))  # a copy: amqp reuses its buffer
        try:
            yield
        finally:
            transport._write = write
        write(b"".join(frames))

    def _publish_each(self, messages: Sequence[OutgoingMessage], exchange: Exchange | str) -> None:
        assert self.producer is not None
        for message in messages:
            properties = {"correlation_id": message.correlation_id} if message.correlation_id else {}
            self.producer.publish(
                message.body,
                exchange=exchange if message.exchange is None else message.exchange,
                routing_key=message.routing_key,
                headers=message.headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=2 if message.persistent else 1,
                message_id=message.message_id,
                retry=False,
                **properties,
            )
            if self._uses_confirms:
                self._unconfirmed.add(self._next_tag)
                self._next_tag += 1

    def _wait_for_confirms(self) -> None:
        assert self.connection is not None
        deadline = time.monotonic() + self.confirm_timeout
        while self._unconfirmed and not self._nacked:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise PublishError("the broker did not confirm the batch in time")
            try:
                self.connection.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
            except Exception:
                self.close()
                raise
        if self._nacked:
            self.close()
            raise PublishError("the broker refused (nacked) a message of the batch")

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail; it is gone
                self.connection.release()
        self.connection = self.channel = self.producer = None
