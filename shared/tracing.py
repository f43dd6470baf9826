"""W3C Trace Context through the platform: from an agency's request to the recipient's inbox.

An agency that sends a ``traceparent`` (HTTP header at the gateway, AMQP header on a command)
has every processing that follows from its request logged in its trace (``shared.ldv``):

- the gateway and the command consumer put the caller's ``traceparent`` (and ``tracestate``)
  into nameko's context data, marked as the caller's (``trace_foreign``); nameko passes context
  data on with every RPC the worker makes;
- every worker (``ServiceHealth.worker_setup``) makes that context current for its work
  (``enter_worker``), so a record made there continues the caller's trace;
- an event saved in that work carries the trace context of the processing that made it (stored
  with the event, not in its signed body: ``shared.ldv``); the relay publishes it as the AMQP
  header ``traceparent`` of the event and of the inbox messages the event makes;
- a consumer takes it from the header and hands it to the handler's worker (not foreign: it is
  the platform's own).

Parsing and formatting are OpenTelemetry's W3C propagator; a malformed header is ignored (a new
trace starts), never an error.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
#: Context-data key: the trace context came from outside the platform (an agency's request).
FOREIGN = "trace_foreign"

_propagator = TraceContextTextMapPropagator()

#: Whether the current work continues a caller's trace (not one of the platform's own).
foreign_var: ContextVar[bool] = ContextVar("keten_trace_foreign", default=False)
#: When the current work started (ns since the epoch): the start of its processings.
started_var: ContextVar[int | None] = ContextVar("keten_work_started", default=None)


def parent_from(carrier: Mapping[str, Any]) -> Context | None:
    """The context a carrier's valid ``traceparent`` names (with its ``tracestate``); None when
    it has none or a malformed one."""
    traceparent, tracestate = carrier.get(TRACEPARENT), carrier.get(TRACESTATE)
    if not isinstance(traceparent, str):
        return None
    return _parsed(traceparent, tracestate if isinstance(tracestate, str) else None)


#: Header values parsed lately. A message's trace context is read three times on its way to
#: its handler (the header checked, handed to the worker, made current there): parsed once.
#: A ``Context`` cannot be changed, so the same one serves each; bounded, whatever is sent.
PARSED_CACHE = 1024


@lru_cache(maxsize=PARSED_CACHE)
def _parsed(traceparent: str, tracestate: str | None) -> Context | None:
    text = {TRACEPARENT: traceparent, **({TRACESTATE: tracestate} if tracestate is not None else {})}
    extracted = _propagator.extract(text)
    return extracted if trace.get_current_span(extracted).get_span_context().is_valid else None


@lru_cache(maxsize=PARSED_CACHE)
def _carrier_of_parsed(traceparent: str, tracestate: str | None) -> tuple[tuple[str, str], ...] | None:
    """``carrier_of`` the context the headers name, as pairs (a cached value must not be
    changed by a caller); None when they name none."""
    parent = _parsed(traceparent, tracestate)
    return None if parent is None else tuple(carrier_of(parent).items())


def _normalised(carrier: Mapping[str, Any]) -> dict[str, str]:
    """``carrier_of(parent_from(carrier))``, parsed once per header value."""
    traceparent, tracestate = carrier.get(TRACEPARENT), carrier.get(TRACESTATE)
    if isinstance(traceparent, str):
        pairs = _carrier_of_parsed(traceparent, tracestate if isinstance(tracestate, str) else None)
        if pairs is not None:
            return dict(pairs)
    return carrier_of(None)  # none named: the current context's, as before


def carrier_of(context: Context | None = None) -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of ``context`` (default: the current one); {} when
    it names no span."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=context)
    return carrier


def current_traceparent() -> str | None:
    return carrier_of().get(TRACEPARENT)


def from_caller(headers: Mapping[str, Any]) -> dict[str, str]:
    """Context data for a worker from a caller's headers (HTTP or AMQP): the valid trace
    context, normalised and marked as the caller's; {} when there is none."""
    lowered = {key.lower(): value for key, value in headers.items()}
    return {**_normalised(lowered), FOREIGN: "1"} if parent_from(lowered) is not None else {}


def valid_traceparent(value: object) -> str | None:
    """``value`` if it is a well-formed ``traceparent`` naming a span, else None (a message's
    header is input like any other)."""
    return _normalised({TRACEPARENT: value}).get(TRACEPARENT) if isinstance(value, str) else None


def from_platform(traceparent: str | None) -> dict[str, str]:
    """Context data for a worker that handles one of the platform's own messages."""
    return _normalised({TRACEPARENT: traceparent}) if traceparent else {}


def enter_worker(data: Mapping[str, Any]) -> object:
    """Makes the trace context in a worker's context data current for the worker; returns the
    token ``leave_worker`` takes. Without one, the worker's processings start a trace."""
    parent = parent_from(data)
    foreign_var.set(parent is not None and data.get(FOREIGN) == "1")
    started_var.set(time.time_ns())
    return otel_context.attach(parent if parent is not None else Context())


def leave_worker(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]  # the token attach returned
