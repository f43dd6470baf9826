"""The envelope every event on ``keten.events`` travels in.

``source`` and ``position`` say where the event stands in its service's notification log: a
consumer processes each stream in order and records the position it reached, so a redelivered
message (same stream, same or lower position) changes nothing.

Positions are not contiguous for one consumer: a consumer takes only some kinds of event, some
events are never published, and a database sequence skips numbers. So each envelope says what
came before it: ``previous`` maps each kind of event of the stream to the position of the latest
earlier one (kinds that did not occur yet are left out). A consumer that takes the kinds K
expects ``max(previous[k] for k in K)`` to be the position it reached; anything else is a gap
to catch up from the upstream's log, or a conflict (``shared.consumer``).

A ``stream`` is the ordered log a position belongs to. Today each service's notification log is
one stream named after the service; a service that partitions its log (by case, say) names each
partition as a stream of its own, and consumers track each separately with no other change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeGuard, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import Tracking
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared.contracts.events import EVENT_SCHEMAS
from shared.contracts.registry import schema_instance
from shared.errors import InvalidRequest
from shared.topology import routing_key

ENVELOPE_VERSION = 1
MESSAGE_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/messages")


class EnvelopeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    schema_version = fields.Integer(
        required=True,
        validate=validate.Equal(ENVELOPE_VERSION, error="unknown schema_version; this platform speaks 1"),
    )
    message_id = fields.UUID(required=True)
    event = fields.String(required=True)
    source = fields.String(required=True)
    position = fields.Integer(required=True, validate=validate.Range(min=1))
    stream = fields.String(
        load_default=None,
        metadata={"description": "the log the position belongs to; absent: the source's whole log"},
    )
    previous = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(validate=validate.Range(min=1)),
        load_default=None,
        metadata={
            "description": "for each kind of event of the stream, the position of the latest "
            "earlier one (absent: none yet); a consumer checks it against the position it reached"
        },
    )
    occurred_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    aggregate_id = fields.UUID(required=True)
    aggregate_version = fields.Integer(required=True, validate=validate.Range(min=1))
    correlation_id = fields.String(allow_none=True, load_default=None)
    data = fields.Dict(required=True)


#: The event a ``ReceivedEvent`` carries: the dataclass its schema loads into.
EventData = TypeVar("EventData", covariant=True)


@dataclass(frozen=True)
class ReceivedEvent(Generic[EventData]):
    """An event from another service, validated against its schema; ``data`` is the event as
    its dataclass (``ReceivedEvent[CaseRegistered]``)."""

    name: str
    source: str
    position: int
    message_id: UUID
    occurred_at: datetime
    aggregate_id: UUID
    aggregate_version: int
    correlation_id: str | None
    data: EventData
    #: The log ``position`` belongs to ("" reads as ``source``).
    stream: str = ""
    #: Kind -> position of the latest earlier event of that kind in the stream; None when the
    #: message does not say (a caught-up event, or an older relay).
    previous: Mapping[str, int] | None = None
    #: SHA-256 of what the event says (its envelope without ``previous``): two messages with the
    #: same stream and position are the same event only if their digests agree.
    digest: str = ""
    #: The W3C trace context the event was made in (its message's ``traceparent`` header, or
    #: its entry in a catch-up page; not part of the signed event); None when it carried none.
    traceparent: str | None = None

    @property
    def log(self) -> str:
        """The stream this event's position counts in."""
        return self.stream or self.source

    @property
    def tracking(self) -> ReceivedTracking:
        return ReceivedTracking(self.log, self.position, self.name, str(self.message_id), self.digest)

    def expected_position(self, kinds: Iterable[str]) -> int | None:
        """Where a consumer of ``kinds`` must stand to take this event next: the latest earlier
        event of one of those kinds (0: none); None if the envelope does not say."""
        if self.previous is None:
            return None
        return max((self.previous.get(kind, 0) for kind in kinds), default=0)

    @property
    def routing_key(self) -> str:
        return routing_key(self.source, self.name)


D = TypeVar("D")


def carries(event: ReceivedEvent[Any], kind: type[D]) -> TypeGuard[ReceivedEvent[D]]:
    """Whether ``event`` is a ``kind``: ``isinstance`` on its data, narrowing the event's type."""
    return isinstance(event.data, kind)


@dataclass(frozen=True)
class ReceivedTracking(Tracking):
    """A tracking record that also says which event was taken at the position and how, so that
    a later message claiming the same position can be told apart (``KetenApplication``
    records it with the tracking, in the same transaction)."""

    event: str = ""
    message_id: str = ""
    digest: str = ""
    outcome: str = "processed"


@dataclass(frozen=True)
class OutgoingMessage:
    routing_key: str
    body: bytes
    headers: dict[str, Any]
    message_id: str
    content_type: str = "application/json"
    content_encoding: str = "utf-8"
    #: Where it goes: None for the exchange the publisher is asked to use; "" is the default
    #: exchange (a direct reply to ``reply_to``).
    exchange: str | None = None
    correlation_id: str | None = None
    persistent: bool = True


def published_name(domain_event: Any, source: str) -> str | None:
    """The event's name if ``source`` publishes it (it has a contract schema), else None."""
    name = type(domain_event).__name__
    schema_cls = EVENT_SCHEMAS.get(name)
    return name if schema_cls is not None and schema_cls.source == source else None


def encode_event(
    domain_event: Any,
    source: str,
    position: int,
    previous: Mapping[str, int] | None = None,
    stream: str | None = None,
) -> OutgoingMessage | None:
    """The message for a stored domain event, or None for an event that is not published
    (one without a contract schema: internal bookkeeping of its service). ``previous`` is the
    chain of positions before it (see the module doc); the relay always gives it."""
    name = published_name(domain_event, source)
    if name is None:
        return None
    schema_cls = EVENT_SCHEMAS[name]
    state = dict(vars(domain_event))
    state[schema_cls.aggregate_id_field] = domain_event.originator_id
    data = schema_instance(schema_cls).dump(state)
    message_id = str(
        uuid5(MESSAGE_NAMESPACE, f"{source}/{domain_event.originator_id}/{domain_event.originator_version}")
    )
    correlation_id = correlation_of(domain_event)
    envelope = {
        "schema_version": ENVELOPE_VERSION,
        "message_id": message_id,
        "event": name,
        "source": source,
        "position": position,
        "occurred_at": _utc(domain_event.timestamp).isoformat(),
        "aggregate_id": str(domain_event.originator_id),
        "aggregate_version": domain_event.originator_version,
        "correlation_id": correlation_id,
        "data": data,
    }
    if stream and stream != source:
        envelope["stream"] = stream  # absent: the source's whole log
    if previous is not None:
        envelope["previous"] = dict(sorted(previous.items()))
    headers = {"keten-source": source, "keten-position": position, "keten-event": name}
    traceparent = getattr(domain_event, "traceparent", None)
    if isinstance(traceparent, str):
        headers["traceparent"] = traceparent  # outside the signed body (shared.tracing)
    return OutgoingMessage(
        routing_key=routing_key(source, name),
        body=json.dumps(envelope, separators=(",", ":")).encode(),
        headers=headers,
        message_id=message_id,
    )


def correlation_of(domain_event: Any) -> str:
    """The id that follows an event's work through the platform (logs, downstream events)."""
    return getattr(domain_event, "correlation_id", None) or str(domain_event.originator_id)


def decode_event(body: bytes | str | dict[str, Any]) -> ReceivedEvent[Any]:
    """Parses and validates a message from ``keten.events``; raises ``InvalidRequest``."""
    try:
        raw = body if isinstance(body, dict) else json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("not_json", "the message body is not JSON") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("invalid_message", "the message body is not a JSON object")
    try:
        envelope = schema_instance(EnvelopeSchema).load(raw)
    except ValidationError as exc:
        raise InvalidRequest.from_validation_error(exc) from None
    schema_cls = EVENT_SCHEMAS.get(envelope["event"])
    if schema_cls is None or schema_cls.source != envelope["source"]:
        raise InvalidRequest("unknown_event", "no such event in the contract", "event")
    try:
        data = schema_instance(schema_cls).load(envelope["data"])
    except ValidationError as exc:
        error = InvalidRequest.from_validation_error(exc)
        raise InvalidRequest(
            error.code, error.message, f"data.{error.field}" if error.field else "data"
        ) from None
    return ReceivedEvent(
        stream=envelope["stream"] or envelope["source"],
        previous=envelope["previous"],
        digest=event_digest(raw),
        name=envelope["event"],
        source=envelope["source"],
        position=envelope["position"],
        message_id=envelope["message_id"],
        occurred_at=envelope["occurred_at"],
        aggregate_id=envelope["aggregate_id"],
        aggregate_version=envelope["aggregate_version"],
        correlation_id=envelope["correlation_id"],
        data=data,
    )


#: What an event says, for its digest: the envelope without the chain (which a relay of another
#: version may compute differently for the same event).
DIGEST_FIELDS = (
    "schema_version",
    "message_id",
    "event",
    "source",
    "stream",
    "position",
    "occurred_at",
    "aggregate_id",
    "aggregate_version",
    "correlation_id",
    "data",
)


def event_digest(raw: Mapping[str, Any]) -> str:
    said = {name: raw.get(name) for name in DIGEST_FIELDS}
    said["stream"] = said["stream"] or said["source"]
    canonical = json.dumps(said, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
