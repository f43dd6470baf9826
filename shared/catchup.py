"""Catching up a gap: a consumer asks the upstream for the events it missed, from the log.

A consumer that finds a gap in a stream (an event whose ``previous`` says that events of its
kinds came after the position it reached) does not skip: it asks the upstream service over RPC
(``published_events``, which every publishing service offers) for the events of its kinds after
its position, and applies them in order before the event at hand. The broker only notifies; the
upstream's notification log is the record.

The answer is a *page*: the events as the relay would publish them, and the range of positions
it covers (``after`` < position <= ``until``), signed as a whole by the upstream's key
(``shared.provenance``), so that a consumer knows the page is complete for that range and that
nobody on the way took an event out of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from shared.contracts.envelope import ReceivedEvent, decode_event, encode_event
from shared.contracts.events import EVENT_SCHEMAS
from shared.errors import InvalidRequest, KetenError, NotAuthorised, ServiceUnavailable
from shared.partitions import case_key, partition_of, source_streams
from shared.provenance import PAGE_CONTEXT, EventKeys
from shared.tracing import valid_traceparent

#: Most events one page carries.
PAGE_LIMIT = 200
PAGE_VERSION = 1


class CatchUpUnavailable(ServiceUnavailable):
    """The upstream cannot serve the missing events now (down, or its answer does not verify):
    the consumer holds the stream and tries again."""


class CatchUpConflict(KetenError):
    """The upstream's log does not hold what the event at hand claims came before it."""


@dataclass(frozen=True)
class PageRequest:
    stream: str
    after: int
    before: int
    kinds: tuple[str, ...]
    limit: int = PAGE_LIMIT

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "after": self.after,
            "before": self.before,
            "kinds": list(self.kinds),
            "limit": self.limit,
        }

    @classmethod
    def from_dict(cls, request: Any) -> PageRequest:
        if not isinstance(request, dict):
            raise InvalidRequest("invalid_message", "a page request is a JSON object")
        try:
            stream, after, before = request["stream"], request["after"], request["before"]
            kinds, limit = request["kinds"], request.get("limit", PAGE_LIMIT)
        except KeyError:
            raise InvalidRequest(
                "invalid_message", "a page request names stream, after, before and kinds"
            ) from None
        if not (
            isinstance(stream, str)
            and all(isinstance(n, int) and n >= 0 for n in (after, before, limit))
            and isinstance(kinds, list)
            and all(isinstance(kind, str) for kind in kinds)
        ):
            raise InvalidRequest("invalid_message", "a page request has a malformed field")
        return cls(stream, after, before, tuple(sorted(set(kinds))), min(limit, PAGE_LIMIT) or 1)


def kind_of_topic(topic: str) -> str:
    """The event's class name from its stored topic (``module:Aggregate.Event``)."""
    return topic.rpartition(":")[2].rpartition(".")[2]


def published_events_page(app: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The upstream's side: the events of the requested kinds in ``(after, before)``, at most
    ``limit`` of them, as a page signed by the service's key. ``app`` is the service's
    ``KetenApplication``; its name is the source and (unpartitioned) the stream, or one of its
    partitions' streams (``shared.partitions``)."""
    wanted = PageRequest.from_dict(request)
    source = app.name
    partitions = app.settings.event_partitions
    streams = source_streams(source, partitions)
    if wanted.stream not in streams:
        raise InvalidRequest("unknown_stream", f"{source} publishes no such stream", "stream")
    partition = streams.index(wanted.stream)
    kinds = {kind for kind in wanted.kinds if getattr(EVENT_SCHEMAS.get(kind), "source", None) == source}
    newest = app.recorder.max_notification_id() or 0
    stop = min(wanted.before - 1, newest)
    covered = wanted.after
    events: list[str] = []
    traces: list[str | None] = []  # each event's traceparent header (shared.tracing)
    while covered < stop and len(events) < wanted.limit:
        batch = app.recorder.select_notifications(
            start=covered, limit=500, stop=stop, inclusive_of_start=False
        )
        if not batch:
            covered = stop  # nothing stored in (covered, stop]: a sequence's skipped numbers
            break
        for notification in batch:
            covered = notification.id
            if kind_of_topic(notification.topic) not in kinds:
                continue
            domain_event = app.mapper.to_domain_event(notification)
            if partition_of(case_key(domain_event), partitions) != partition:
                continue
            message = encode_event(domain_event, source, notification.id, stream=wanted.stream)
            if message is not None:
                events.append(message.body.decode())
                traces.append(message.headers.get("traceparent"))
                if len(events) >= wanted.limit:
                    break
    page = {
        "schema_version": PAGE_VERSION,
        "source": source,
        **wanted.as_dict(),
        "until": max(covered, wanted.after),
        "events": events,
    }
    if any(traces):
        page["traceparents"] = traces
    body = json.dumps(page, separators=(",", ":")).encode()
    signature = EventKeys.for_settings(app.settings).sign(source, body, PAGE_CONTEXT)
    return {"page": body.decode(), "key_id": signature.key_id, "signature": signature.signature}


@dataclass(frozen=True)
class Page:
    """A verified page: the events in it, in order, and how far it covers the log."""

    until: int
    events: Sequence[tuple[ReceivedEvent[Any], bytes]]


def read_page(keys: EventKeys, source: str, asked: PageRequest, answer: Any) -> Page:
    """The consumer's side: verifies the page's signature and that it answers what was asked;
    raises ``CatchUpUnavailable`` if it does not (nothing in it is used)."""
    try:
        body = str(answer["page"]).encode()
        signer = keys.signer(answer.get("key_id"), answer.get("signature"), body, PAGE_CONTEXT)
        page = json.loads(body)
    except (KeyError, TypeError, AttributeError, ValueError, NotAuthorised):
        raise CatchUpUnavailable(
            "catch_up_unverified", f"{source}'s answer to a catch-up is not a page signed by it"
        ) from None
    echoed = {key: page.get(key) for key in ("source", "stream", "after", "before", "kinds")}
    expected = {"source": source, **{k: v for k, v in asked.as_dict().items() if k != "limit"}}
    if signer != source or echoed != expected or not isinstance(page.get("until"), int):
        raise CatchUpUnavailable("catch_up_unverified", f"{source}'s page does not answer the request")
    events = []
    last = asked.after
    texts = page.get("events") or []
    traces = page.get("traceparents")
    if not isinstance(traces, list) or len(traces) != len(texts):
        traces = [None] * len(texts)  # a page without them (an older upstream)
    for text, traceparent in zip(texts, traces, strict=True):
        body = str(text).encode()
        try:
            event = decode_event(body)
        except KetenError:
            raise CatchUpUnavailable(
                "catch_up_unverified", f"{source}'s page holds an unreadable event"
            ) from None
        if (
            event.source != source
            or event.log != asked.stream
            or not last < event.position <= page["until"]
            or event.name not in asked.kinds
        ):
            raise CatchUpUnavailable(
                "catch_up_unverified", f"{source}'s page holds an event out of its range"
            )
        last = event.position
        if valid_traceparent(traceparent):
            event = replace(event, traceparent=traceparent)
        events.append((event, body))
    return Page(until=page["until"], events=events)
