"""The agency's side of the bus, on kombu (blocking; no framework needed).

client = AgencyClient(Credentials.load("gemeente-utrecht.json"))
with client:
    reply = client.request("data_sharing", "request_share", {...})   # waits for the answer
    for message in client.inbox(timeout=5):                            # acks each one
        my_case_system.store(message.name, message.data, message.content)  # never to a log
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

from shared.http_signatures import sign_request
from shared.wire import (
    CREATED_HEADER,
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    Credentials,
    command_target,
    open_sealed,
    sign,
    unb64,
)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


def signed_http_headers(credentials: Credentials, method: str, path: str, body: bytes) -> dict[str, str]:
    """The headers that sign one HTTP request to the gateway (RFC 9421: ``Content-Digest``,
    ``Signature-Input``, ``Signature``): send ``body`` as these exact bytes to ``path`` (with its
    query, if any), within a minute. Each call makes a new nonce: sign every request, and every
    retry, anew; the gateway refuses a signature it has seen before."""
    return {
        **sign_request(unb64(credentials.signing_private_key), credentials.key_id, method, path, body),
        "Content-Type": "application/json",
    }


class CommandFailed(Exception):
    """The platform rejected a command; ``error`` has its ``code``, ``message`` and ``field``."""

    def __init__(self, error: dict[str, Any]):
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error


#: Inbox messages whose ``sealed_content`` is sealed to your encryption key.
SEALED_CONTENT_MESSAGES = ("ShareReceived", "ShareCorrected")


@dataclass
class InboxMessage:
    name: str
    message_id: str
    correlation_id: str | None
    data: dict[str, Any]
    #: For ``ShareReceived`` and ``ShareCorrected``: the (corrected) content, opened with your
    #: encryption key.
    content: Any = None
    envelope: dict[str, Any] = field(default_factory=dict)

    @property
    def traceparent(self) -> str | None:
        """The W3C trace context of the processing the message comes from: its trace id is the
        one your request sent in its ``traceparent``, if it sent one."""
        value = self.envelope.get("traceparent")
        return value if isinstance(value, str) else None

    @property
    def requires_erasure(self) -> bool:
        """``ShareErasureRequired``: erase your copy of share ``data["share_id"]`` and of its
        corrections (see docs/agencies.md)."""
        return self.name == "ShareErasureRequired"


class AgencyClient:
    def __init__(self, credentials: Credentials, connect_timeout: float = 10.0):
        self.credentials = credentials
        # Publisher confirms: send() returns once the broker has the command, and a command
        # cannot be lost to a connection that closes right after publishing.
        self.connection = Connection(
            credentials.amqp_url, connect_timeout=connect_timeout, transport_options={"confirm_publish": True}
        )
        self._replies: dict[str, dict[str, Any]] = {}
        self._reply_consumer: Consumer | None = None
        #: The consistency token of the latest answer: sent with every later command, so the
        #: platform decides each one knowing everything this client wrote before (None: none yet).
        self.consistency_token: str | None = None

    def __enter__(self) -> AgencyClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        self.connection.ensure_connection(max_retries=3)
        self.channel = self.connection.channel()
        self.producer = Producer(self.channel, on_return=self._on_return)
        self._returned: list[str] = []

    def close(self) -> None:
        self.connection.release()

    # -- commands ---------------------------------------------------------------------------------
    def send(
        self,
        service: str,
        command: str,
        body: dict[str, Any],
        reply: bool = False,
        traceparent: str | None = None,
    ) -> str:
        """Signs and publishes a command; returns its message_id (the reply's correlation_id).

        ``body`` is the command by its schema; ``agency`` and ``schema_version`` are filled in
        when absent. ``traceparent`` (W3C Trace Context) puts what the command causes in your
        trace: the platform's processing log records and the inbox messages carry its trace id.
        """
        token = {"consistency_token": self.consistency_token} if self.consistency_token else {}
        body = {"schema_version": 1, "agency": self.credentials.agency, **token, **body}
        payload = json.dumps(body, separators=(",", ":")).encode()
        routing_key = f"{self.credentials.agency}.{service}.{command}"
        message_id = str(uuid.uuid4())
        headers = command_headers(
            self.credentials.key_id,
            unb64(self.credentials.signing_private_key),
            routing_key,
            message_id,
            payload,
        )
        if traceparent:
            headers = {**headers, "traceparent": traceparent}  # not signed: only for the logs
        properties: dict[str, Any] = {}
        if reply:
            self._listen_for_replies()
            properties["reply_to"] = DIRECT_REPLY_TO
        self.producer.publish(
            payload,
            exchange=Exchange(
                self.credentials.commands_exchange, type="topic", durable=True, no_declare=True
            ),
            routing_key=routing_key,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
            message_id=message_id,
            headers=headers,
            mandatory=True,
            **properties,
        )
        return message_id

    def request(
        self,
        service: str,
        command: str,
        body: dict[str, Any],
        timeout: float = 15.0,
        traceparent: str | None = None,
    ) -> Any:
        """Sends a command and waits for its answer: the result, or ``CommandFailed``. The
        answer's consistency token goes with the next command (``consistency_token``)."""
        message_id = self.send(service, command, body, reply=True, traceparent=traceparent)
        reply = self.await_reply(message_id, timeout)
        if reply["message"] == "CommandRejected":
            raise CommandFailed(reply["data"]["error"])
        result = reply["data"]["result"]
        if isinstance(result, dict) and result.get("consistency_token"):
            self.consistency_token = result["consistency_token"]
        return result

    def await_reply(self, message_id: str, timeout: float = 15.0) -> dict[str, Any]:
        """The answer to the command ``message_id`` (sent with ``reply=True``)."""
        deadline_left = timeout
        while message_id not in self._replies:
            if self._returned:
                raise CommandFailed({"code": "unroutable", "message": "no service takes this command"})
            if deadline_left <= 0:
                raise TimeoutError(f"no answer within {timeout}s; it will also arrive in your inbox")
            with contextlib.suppress(TimeoutError):
                self.connection.drain_events(timeout=0.5)
            deadline_left -= 0.5
        return self._replies.pop(message_id)

    def _listen_for_replies(self) -> None:
        if self._reply_consumer is None:
            queue = Queue(DIRECT_REPLY_TO, no_declare=True)
            self._reply_consumer = Consumer(
                self.channel, queues=[queue], no_ack=True, on_message=self._on_reply, accept=["json"]
            )
            self._reply_consumer.consume()

    def _on_reply(self, message: Any) -> None:
        envelope = json.loads(message.body)
        self._replies[str(message.properties.get("correlation_id"))] = envelope

    def _on_return(self, exception: Exception, exchange: str, routing_key: str, message: Any) -> None:
        self._returned.append(routing_key)

    # -- the inbox --------------------------------------------------------------------------------
    def inbox(self, timeout: float = 5.0, limit: int | None = None) -> Iterator[InboxMessage]:
        """Messages in the inbox, each acknowledged once the loop body has handled it; stops
        after ``timeout`` seconds without a message (or after ``limit`` messages)."""
        queue = Queue(
            self.credentials.inbox_queue or f"keten.inbox.{self.credentials.agency}", no_declare=True
        )
        channel = self.connection.channel()
        try:
            seen = 0
            idle_since = time.monotonic()
            while limit is None or seen < limit:
                raw = queue(channel).get(no_ack=False, accept=["json"])
                if raw is None:
                    if time.monotonic() - idle_since > timeout:
                        return
                    time.sleep(0.1)
                    continue
                idle_since = time.monotonic()
                yield self.read(raw.body)
                raw.ack()
                seen += 1
        finally:
            channel.close()

    def read(self, body: bytes | str) -> InboxMessage:
        """An inbox message, its shared or corrected content opened when it is sealed to you."""
        envelope = json.loads(body)
        data = envelope.get("data") or {}
        content = None
        if envelope.get("message") in SEALED_CONTENT_MESSAGES and data.get("sealed_content"):
            content = open_sealed(unb64(self.credentials.encryption_private_key), data["sealed_content"])
        return InboxMessage(
            name=envelope.get("message", ""),
            message_id=envelope.get("message_id", ""),
            correlation_id=envelope.get("correlation_id"),
            data=data,
            content=content,
            envelope=envelope,
        )


def command_headers(
    key_id: str,
    signing_private_key: bytes,
    routing_key: str,
    message_id: str,
    body: bytes,
    created: datetime | None = None,
) -> dict[str, str]:
    """The headers that sign an AMQP command: your key id, when it was made (now, unless
    ``created`` says otherwise) and the signature over routing key, message id, that time and
    the exact body bytes. Publish it with this ``message_id``; a copy is refused later."""
    made = (created or datetime.now(UTC)).isoformat()
    target = command_target(routing_key, message_id, made)
    return {
        KEY_ID_HEADER: key_id,
        CREATED_HEADER: made,
        SIGNATURE_HEADER: sign(signing_private_key, target, body),
    }
