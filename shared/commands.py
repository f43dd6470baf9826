"""Agencies' commands from ``keten.commands``: authenticated, carried out, answered.

Each service that takes commands has an ``AgencyCommands`` dependency. It consumes the service's
quorum queue ``keten.<service>.commands`` (routing key ``<agency>.<service>.<command>``) and, per
message:

1. checks that it is a command of this service in the contract, that its body is JSON, and that
   its signature verifies with a valid key of the agency its routing key names (the broker already
   refused any routing key outside the sender's own prefix; the signature holds even where several
   agencies share one connection), and that the body names the same agency; the signature also
   covers the message id and the ``created`` time, and a command older than its window
   (``KETEN_COMMAND_WINDOW``), or whose message id was seen before within it (``shared.seen``,
   in the database, across restarts and replicas), is refused:
   a copy taken off the wire cannot be sent again (a redelivery by the broker is not a copy);
2. runs the service's ``@rpc`` method of the command's name in a worker: that method loads the
   command through its schema and makes the one application call, exactly as for RPC and HTTP,
   and is repeat-safe (by ``case_id``/``request_id``), so a redelivered command changes nothing;
3. answers the sender: ``CommandAccepted`` with the result, or ``CommandRejected`` with the error,
   into the agency's inbox, and also straight to ``reply_to`` when the command names one;
4. a rejected command goes to ``keten.dead-letter`` with the reason in its headers, its body
   sealed (it may hold a BSN or shared contents) so the dead-letter queue holds nothing readable;
5. a database or broker outage holds the command and retries it; a bug is retried a few times,
   then rejected as ``internal_error``. The message is acknowledged only once it was answered,
   so nothing is lost and nothing loops.

A command added to the contract (``COMMAND_SCHEMAS``) with an ``@rpc`` method of the same name on
its service is taken from the bus with no change here.

A service that declares ``AgencyCommands(in_batches=True)`` (data_sharing) takes the commands
delivered at once in one transaction of its store (``KetenApplication.batch``), up to
``COMMANDS_PER_TRANSACTION``: the agencies' keys are read in one statement at the batch's start,
the message ids are remembered in one statement inside the transaction (so a command is seen if
and only if what it did commits), the events table is locked once, and one ``COMMIT`` ends it.
Each command runs in a savepoint of its own, opened in the round trip of its first statement:
a command refused by the rules is rolled back to it alone, the others' effects stay. Anything
else (an outage, a conflict with another replica, a bug, a failed commit) abandons the whole
transaction and its commands are taken again one at a time, as above, each with its own retries,
holds and dead letter: nothing was answered or acknowledged yet, and every command is repeat-safe.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, uuid4, uuid5

import eventlet
from eventlet.event import Event
from kombu import Queue
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc

from shared import metrics, tracing
from shared.agencies import AgencyKey, AgencyRegistry
from shared.application import Batch, KetenApplication, vault_for
from shared.consumer import BUG_RETRIES, TRANSIENT_ERRORS, QueueConsumer, dead_letter_message, run_in_worker
from shared.contracts.commands import COMMAND_SCHEMAS
from shared.contracts.envelope import OutgoingMessage
from shared.contracts.inbox import inbox_message, inbox_message_id
from shared.db import Cursor
from shared.errors import InvalidRequest, KetenError, NotAuthorised
from shared.sealed import KeyScope
from shared.seen import SeenIds, Sighting
from shared.topology import command_queue, dead_letter_exchange, parse_command_routing_key
from shared.wire import CREATED_HEADER, KEY_ID_HEADER, SIGNATURE_HEADER, command_target

log = logging.getLogger(__name__)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
#: At most how many commands one transaction carries out: each that writes takes a subtransaction
#: id, and past 64 of them PostgreSQL's snapshots of every session get slower (subxid overflow).
COMMANDS_PER_TRANSACTION = 50
#: The savepoint each command of a batch runs in.
SAVEPOINT = "keten_command"
DEAD_LETTER_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/dead-letters")


def dead_letter_scope(moment: datetime | None = None) -> KeyScope:
    """The key rejected commands are sealed under: one per month, so that an operator can shred
    a month of dead letters at once (``Vault.shred``) when their time is up."""
    month = (moment or datetime.now(UTC)).strftime("%Y-%m")
    return KeyScope(uuid5(DEAD_LETTER_NAMESPACE, month))


@dataclasses.dataclass(frozen=True)
class Received:
    """What the consumer knows of a command before trusting any of it."""

    routing_key: str
    agency: str | None
    command: str | None
    message_id: str | None
    correlation_id: str | None
    reply_to: str | None
    #: The agency's W3C trace context (AMQP headers ``traceparent``, ``tracestate``), marked as
    #: the caller's, for the worker (``shared.tracing``); {} without a valid one.
    trace: dict[str, str] = dataclasses.field(default_factory=dict)


class AgencyCommands(DependencyProvider, QueueConsumer):
    """Consumes the service's commands queue; answers every command (see the module doc)."""

    consumes = "commands"

    def __init__(self, in_batches: bool = False) -> None:
        super().__init__()
        self._init_consumer()
        #: Whether the commands delivered at once are carried out in one transaction (see the
        #: module doc); only for a service whose use cases all save through its application.
        self.in_batches = in_batches

    # -- nameko lifecycle ---------------------------------------------------------------------
    def setup(self) -> None:
        self._setup_consumer(self.container)
        self.registry = AgencyRegistry.for_settings(self.settings)
        self.vault = vault_for(self.settings)
        self.seen = SeenIds.for_settings(self.settings)

    def start(self) -> None:
        self.start_consuming(self.container)

    def stop(self) -> None:
        self.stop_consuming()

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self

    def queue(self) -> Queue:
        return command_queue(self.service)

    def health_report(self) -> tuple[dict[str, Any], bool]:
        return {"commands": "ok" if self.consuming else "waiting"}, self.consuming

    # -- processing -----------------------------------------------------------------------------
    def on_batch(self, messages: list[Any]) -> None:
        """Carries out the delivered commands in order, then publishes all their answers and
        dead letters at once (one wait for the broker's confirms) and acknowledges them with one
        ack. A crash before the ack takes them again: repeat-safe, answered with the same ids."""
        app = self._batch_application() if len(messages) > 1 else None
        if app is None:
            self._one_at_a_time(messages)
            return
        for start in range(0, len(messages), COMMANDS_PER_TRANSACTION):
            if self.should_stop:
                return  # the rest goes back to the queue with the connection
            self._in_one_transaction(app, messages[start : start + COMMANDS_PER_TRANSACTION])

    def _batch_application(self) -> KetenApplication | None:
        """The service's application, if its commands are taken in batches and its store takes
        them, in the same database pool as the seen ids (they are written in its transaction)."""
        if not self.in_batches:
            return None
        found = [
            app
            for dependency in self.container.dependencies
            if isinstance(app := getattr(dependency, "app", None), KetenApplication)
        ]
        if len(found) != 1 or not found[0].batches:
            return None
        app = found[0]
        return app if app.recorder.datastore is self.seen.store.datastore else None  # type: ignore[attr-defined]

    def _in_one_transaction(self, app: KetenApplication, messages: list[Any]) -> None:
        """Carries out ``messages`` in one transaction of ``app``'s store (see the module doc);
        answers and acknowledges them once it committed. If it cannot commit as a whole, they
        are taken again one at a time."""
        outgoing: list[OutgoingMessage] = []
        counted: list[tuple[str, str, float]] = []
        try:
            with app.batch(commands=True) as batch:
                savepoints = _Savepoints(batch)
                taken = self._authenticated_in(batch, messages)
                for message, (received, authentic) in zip(messages, taken, strict=True):
                    if self.should_stop:
                        raise _Requeue()
                    started = time.perf_counter()
                    name = received.command if received.command in COMMAND_SCHEMAS else "unknown"
                    try:
                        command = self._trusted(message, received, authentic)
                        savepoints.begin()
                        result = self._execute_in(batch, received, command)
                        savepoints.end()
                    except KetenError as error:
                        if isinstance(error, TRANSIENT_ERRORS):
                            raise
                        savepoints.undo()
                        outgoing.extend(self.reject(message, received, error))
                        outcome = "rejected"
                    else:
                        outgoing.extend(self.answer(received, result))
                        outcome = "processed"
                    counted.append((name, outcome, time.perf_counter() - started))
        except _Requeue:
            for message in messages:
                message.requeue()
            return
        except Exception as exc:
            log.info(
                "%s: a batch of %d command(s) taken one at a time (%s)",
                self.service,
                len(messages),
                type(exc).__name__,
            )
            self._one_at_a_time(messages)
            return
        self.seen.purge_now_and_then()
        self._publish(outgoing)
        self.ack_all(messages)
        for name, outcome, seconds in counted:
            metrics.count_handled(self.service, name, outcome, seconds)
        milliseconds = round(sum(seconds for _, _, seconds in counted) * 1000, 1)
        log.info(
            "%s: carried out %d command(s) in one transaction in %.1f ms",
            self.service,
            len(messages),
            milliseconds,
            extra={"batch": len(messages), "commands": True, "duration_ms": milliseconds},
        )

    def _authenticated_in(
        self, batch: Batch, messages: list[Any]
    ) -> list[tuple[Received, _Authentic | KetenError]]:
        """Each message's signature checked with the keys read for the batch (one statement)
        and, for the authentic ones, whether their id is seen for the first time: remembered in
        one statement, in the batch's transaction."""
        received = [_received(message) for message in messages]
        keys = self.registry.keys((message.headers or {}).get(KEY_ID_HEADER) for message in messages)
        signed: list[_Signed | KetenError] = []
        for message, one in zip(messages, received, strict=True):
            try:
                signed.append(self._signed(message, one, keys))
            except KetenError as error:
                signed.append(error)
        sightings = [s.sighting for s in signed if isinstance(s, _Signed)]
        firsts = self.seen.first_sightings(Cursor(self.seen.store, batch.cursor), sightings)
        taken: list[tuple[Received, _Authentic | KetenError]] = []
        for one, outcome in zip(received, signed, strict=True):
            if isinstance(outcome, _Signed):
                key = (outcome.sighting.scope, outcome.sighting.id)
                first = key in firsts
                firsts.discard(key)  # the same id again in this batch is a repeat
                taken.append((one, _Authentic(outcome.signer, first)))
            else:
                taken.append((one, outcome))
        return taken

    def _execute_in(self, batch: Batch, received: Received, command: dict[str, Any]) -> Any:
        """Runs the service's method for the command in a worker admitted to ``batch``; what
        it raised is raised here (``KetenError`` for a refusal; anything else abandons the
        batch)."""
        entrypoint = self._entrypoint(received.command or "")
        done: Event = Event()

        def handle_result(worker_ctx: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
            done.send((result, exc_info))
            return result, exc_info

        trace, correlation_id = received.trace, received.correlation_id
        context = {**trace, **({"correlation_id": correlation_id} if correlation_id else {})}
        try:
            worker_ctx = self.container.spawn_worker(
                entrypoint, (command,), {}, context_data=context, handle_result=handle_result
            )
        except ContainerBeingKilled:
            raise _Requeue() from None
        # The worker's green thread has not run yet: it starts inside the batch's transaction.
        # (nameko keeps no public way from a worker's context to its thread.)
        batch.join(self.container._worker_threads[worker_ctx])
        result, exc_info = done.wait()
        if exc_info is not None:
            if isinstance(exc_info[1], ContainerBeingKilled):
                raise _Requeue()
            raise exc_info[1]
        return result

    def _one_at_a_time(self, messages: list[Any]) -> None:
        """Carries out each command in transactions of its own (``handle``)."""
        outgoing: list[OutgoingMessage] = []
        settled: list[Any] = []
        counted: list[tuple[str, str, float]] = []
        for index, message in enumerate(messages):
            if self.should_stop:
                break
            started = time.perf_counter()
            received = _received(message)
            name = received.command if received.command in COMMAND_SCHEMAS else "unknown"
            try:
                replies, outcome = self.handle(message, received)
            except _Requeue:
                for unsettled in messages[index:]:
                    unsettled.requeue()
                break
            outgoing.extend(replies)
            settled.append(message)
            counted.append((name, outcome, time.perf_counter() - started))
        self._publish(outgoing)
        if len(settled) == len(messages):
            self.ack_all(settled)
        else:
            for message in settled:
                message.ack()
        for name, outcome, seconds in counted:
            metrics.count_handled(self.service, name, outcome, seconds)

    def on_message(self, message: Any) -> None:
        self.on_batch([message])

    def handle(self, message: Any, received: Received) -> tuple[list[OutgoingMessage], str]:
        """Carries out one command; what to publish for it (answer, dead letter) and its outcome.
        Raises ``_Requeue`` when the service is stopping."""
        try:
            command = self.authenticate(message, received)
            result = self.execute(received, command)
        except KetenError as error:
            return self.reject(message, received, error), "rejected"
        return self.answer(received, result), "processed"

    def authenticate(self, message: Any, received: Received) -> dict[str, Any]:
        """The command's body, once it is known to come from the agency it names."""
        signed = self._signed(message, received)
        sighting = signed.sighting
        first = self.seen.first_sighting(sighting.scope, sighting.id, sighting.until)
        return self._trusted(message, received, _Authentic(signed.signer, first))

    def _signed(
        self, message: Any, received: Received, keys: Mapping[str, AgencyKey] | None = None
    ) -> _Signed:
        """Who signed the command, checked against its keys (``keys``: those read for a batch),
        and what to remember of it; ``NotAuthorised`` if no agency did, or too long ago."""
        schema = COMMAND_SCHEMAS.get(received.command or "")
        if received.agency is None or schema is None or schema.service != self.service:
            raise InvalidRequest(
                "unknown_command", f"{self.service} takes no such command; see docs/asyncapi.yaml"
            )
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        headers = message.headers or {}
        if received.message_id is None:
            raise NotAuthorised("message_id_missing", "a command must carry a message_id (a fresh UUID)")
        created_text = headers.get(CREATED_HEADER)
        created = _created(created_text)
        if created is None:
            raise NotAuthorised(
                "created_missing",
                f"a command must carry {CREATED_HEADER}: when it was made, ISO-8601 with offset",
            )
        target = command_target(received.routing_key, received.message_id, str(created_text))
        signer = self.registry.verify(
            headers.get(KEY_ID_HEADER), headers.get(SIGNATURE_HEADER), target, body, known=keys
        )
        if signer != received.agency:
            raise NotAuthorised("bad_signature", "the signature does not verify with a valid key")
        now = datetime.now(UTC)
        window = timedelta(seconds=self.settings.command_window)
        skew = timedelta(seconds=self.settings.signature_clock_skew)
        if not now - window <= created <= now + skew:
            raise NotAuthorised(
                "command_expired", "the command was made too long ago (or in the future); send it anew"
            )
        # Remembered until it would be refused as expired anyway. A redelivery by the broker (a
        # consumer stopped before its ack) is not a copy: only the broker sets that flag.
        remember_until = max(created, now) + window + skew
        return _Signed(signer, Sighting(f"amqp-command:{signer}", received.message_id, remember_until))

    def _trusted(
        self, message: Any, received: Received, authentic: _Authentic | KetenError
    ) -> dict[str, Any]:
        """The command's body, once it is known to come from the agency it names and not to
        be a copy of one taken before."""
        if isinstance(authentic, KetenError):
            raise authentic
        signer = authentic.signer
        redelivered = bool(message.delivery_info.get("redelivered"))
        if not authentic.first and not redelivered:
            raise NotAuthorised(
                "command_replayed", "a command with this message_id was already taken; send a new one"
            )
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        try:
            command = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest("not_json", "the message body is not JSON") from None
        if not isinstance(command, dict):
            raise InvalidRequest("invalid_message", "a command is a JSON object")
        if command.get("agency") != signer:
            raise NotAuthorised(
                "agency_mismatch", "the command names another agency than its sender", "agency"
            )
        return command

    def execute(self, received: Received, command: dict[str, Any]) -> Any:
        """Runs the service's method for the command; holds it through outages of the store."""
        entrypoint = self._entrypoint(received.command or "")
        attempts, delay = 0, 0.2
        while not self.should_stop:
            attempts += 1
            try:
                return run_in_worker(entrypoint, command, received.correlation_id, received.trace)
            except ContainerBeingKilled:
                raise _Requeue() from None
            except KetenError as error:
                if not isinstance(error, TRANSIENT_ERRORS):
                    raise
                log.warning(
                    "%s: %s held: %s; retrying in %.1fs", self.service, received.command, error.code, delay
                )
            except TRANSIENT_ERRORS as exc:
                log.warning(
                    "%s: %s held: %s; retrying in %.1fs",
                    self.service,
                    received.command,
                    type(exc).__name__,
                    delay,
                )
            except Exception as exc:
                if attempts >= BUG_RETRIES:
                    log.error(
                        "%s: %s failed (%s); rejected", self.service, received.command, type(exc).__name__
                    )
                    raise KetenError(
                        "internal_error", "something went wrong on our side; try again later"
                    ) from None
            eventlet.sleep(delay)
            delay = min(delay * 2, 30.0)
        raise _Requeue()

    def _entrypoint(self, name: str) -> Rpc:
        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, Rpc) and entrypoint.method_name == name:
                return entrypoint
        raise InvalidRequest(
            "unknown_command", f"{self.service} takes no such command; see docs/asyncapi.yaml"
        )

    # -- answering --------------------------------------------------------------------------------
    def answer(self, received: Received, result: Any) -> list[OutgoingMessage]:
        assert received.agency is not None
        reply = inbox_message(
            received.agency,
            "CommandAccepted",
            {"in_reply_to": received.message_id or "", "command": received.command, "result": result},
            message_id=_reply_id(received),
            correlation_id=received.correlation_id,
            traceparent=received.trace.get(tracing.TRACEPARENT),
        )
        return _with_direct_reply(reply, received.reply_to)

    def _publish(self, messages: list[OutgoingMessage]) -> None:
        assert self.publisher is not None
        self.publisher.publish(messages)

    def reject(self, message: Any, received: Received, error: KetenError) -> list[OutgoingMessage]:
        messages: list[OutgoingMessage] = []
        if error.retryable:
            # An answer that asks for a retry (the platform was catching up), not a dead letter.
            log.info("%s: asked to retry a command on %s: %s", self.service, received.routing_key, error.code)
        else:
            metrics.dead_letters.labels(self.service, error.code).inc()
            log.warning("%s: rejected a command on %s: %s", self.service, received.routing_key, error.code)
            body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
            sealed = self.vault.seal(dead_letter_scope(), {"body": base64.b64encode(body).decode()})
            dead = dead_letter_message(
                message,
                self.service,
                error.code,
                error.message,
                name=received.command,
                body=json.dumps(sealed.to_json()).encode(),
                content_type="application/vnd.keten.sealed+json",
            )
            messages.append(dataclasses.replace(dead, exchange=dead_letter_exchange.name))
        if received.agency is not None:
            reply = inbox_message(
                received.agency,
                "CommandRejected",
                {
                    "in_reply_to": received.message_id,
                    "command": received.command if received.command in COMMAND_SCHEMAS else None,
                    "error": error.as_dict(),
                },
                # A replay must not pass for the answer to the command it copies.
                message_id=str(uuid4()) if error.code == "command_replayed" else _reply_id(received),
                correlation_id=received.correlation_id,
                traceparent=received.trace.get(tracing.TRACEPARENT),
            )
            messages.extend(_with_direct_reply(reply, received.reply_to))
        return messages


class _Requeue(Exception):
    """The service is stopping: the command goes back to the queue, unanswered."""


@dataclasses.dataclass(frozen=True)
class _Signed:
    """A command whose signature verified: its signer, and its id to remember."""

    signer: str
    sighting: Sighting


@dataclasses.dataclass(frozen=True)
class _Authentic:
    """A signed command, and whether its id was seen for the first time."""

    signer: str
    first: bool


class _Savepoints:
    """Each command of a batch in a savepoint of its own, so that a refusal rolls back only
    that command's statements (a use case may have written, or failed a statement, before it
    refused). The savepoint is sent ahead of the command's first statement, in its round trip,
    and released by the next one's: no round trip of its own; a command that sends no
    statement opens none. Rolling back to it also releases the events table's lock if the
    command took it: the batch then takes it again with its next save."""

    def __init__(self, batch: Batch):
        self.batch = batch
        self.cursor = batch.cursor
        #: Whether the savepoint exists in the transaction (the next one releases it).
        self.open = False
        #: Whether a command runs (between ``begin`` and ``end``/``undo``).
        self.running = False
        self.locked = batch.locked

    def begin(self) -> None:
        self.running, self.locked = True, self.batch.locked
        release = f"RELEASE SAVEPOINT {SAVEPOINT}; " if self.open else ""
        self.cursor.prefix = f"{release}SAVEPOINT {SAVEPOINT}; "

    def end(self) -> None:
        self.running = False
        if self.cursor.prefix:
            self.cursor.prefix = ""  # the command sent nothing
        else:
            self.open = True

    def undo(self) -> None:
        """Rolls back what the running command did (nothing if it was refused before it ran)."""
        if not self.running:
            return
        self.running = False
        if self.cursor.prefix:
            self.cursor.prefix = ""  # nothing sent, nothing to undo
            return
        self.cursor.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
        self.open = True
        self.batch.locked = self.locked


def _received(message: Any) -> Received:
    routing_key = str(message.delivery_info.get("routing_key") or "")
    parsed = parse_command_routing_key(routing_key)
    properties = message.properties or {}
    message_id = _text(properties.get("message_id"))
    return Received(
        routing_key=routing_key,
        agency=parsed[0] if parsed else None,
        command=parsed[2] if parsed else None,
        message_id=message_id,
        correlation_id=_text(properties.get("correlation_id")) or message_id,
        reply_to=_text(properties.get("reply_to")),
        trace=tracing.from_caller(message.headers or {}),
    )


def _reply_id(received: Received) -> str:
    """Stable for a redelivered command that carries a message_id, so the agency sees a
    repeated answer as the same message."""
    if received.message_id is None:
        return str(uuid4())
    return inbox_message_id("reply", received.agency, received.message_id)


def _created(value: Any) -> datetime | None:
    """A command's ``created`` header as senders write it: ISO-8601 with an offset; else None."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _text(value: Any) -> str | None:
    """A message property the sender chose, if it is a plain token we can echo back (AMQP's
    short strings hold 255 bytes; anything else is dropped, not repeated)."""
    text = str(value) if value else ""
    return text if re.fullmatch(r"[\x21-\x7e]{1,200}", text) else None


def _with_direct_reply(reply: OutgoingMessage, reply_to: str | None) -> list[OutgoingMessage]:
    """The reply into the inbox, and the same reply straight to ``reply_to`` (not stored).

    Only RabbitMQ's direct reply-to is honoured: ``reply_to`` naming an ordinary queue (say,
    another agency's inbox) would make the platform deliver there on the sender's behalf.
    """
    if not reply_to or not reply_to.startswith(DIRECT_REPLY_TO):
        return [reply]
    return [reply, dataclasses.replace(reply, exchange="", routing_key=reply_to, persistent=False)]
