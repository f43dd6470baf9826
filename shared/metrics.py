"""Prometheus metrics of the platform, in the process's default registry.

Every service process serves them on ``OPS_PORT`` (``/metrics``, see ``shared.ops``); the
embedded platform serves them on the gateway's ``/metrics``. Labels carry names of services,
events, entrypoints, outcomes, channels and reason codes: a small, fixed vocabulary, never an id
and never anything about a person (``LABEL_NAMES`` lists every label in use; a test holds them
to it). ``deploy/grafana/keten-dashboard.json`` and ``deploy/prometheus/alerts.yml`` are built on
these names.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

#: Every label name a Keten metric may carry; each takes values from a fixed vocabulary.
LABEL_NAMES = frozenset(
    {
        "service",
        "event",
        "outcome",
        "reason_code",
        "kind",
        "entrypoint",
        "channel",
        "status",
        "record_kind",
        "retention_class",
        "upstream",
    }
)

messages_handled = Counter(
    "keten_messages_handled_total",
    "Messages a service consumed, by event and outcome (processed, duplicate, rejected, failed, requeued).",
    ["service", "event", "outcome"],
)
handling_seconds = Histogram(
    "keten_message_handling_seconds",
    "Time to handle one consumed message, retries included.",
    ["service", "event"],
    buckets=LATENCY_BUCKETS,
)


def count_handled(service: str, event: str, outcome: str, seconds: float) -> None:
    """A message a service took (an event or a command): counted by outcome, and how long it
    took. The labelled children are looked up once per service, event and outcome."""
    handled, timed = _handled_children(service, event, outcome)
    handled.inc()
    timed.observe(seconds)


@lru_cache(maxsize=1024)  # a small, fixed vocabulary (see above): bounded all the same
def _handled_children(service: str, event: str, outcome: str) -> tuple[Any, Any]:
    return messages_handled.labels(service, event, outcome), handling_seconds.labels(service, event)


consumer_blocked = Gauge(
    "keten_consumer_blocked",
    "1 while a service's consumer holds a message it cannot process because the database or "
    "broker is unreachable (it retries; order must hold), else 0.",
    ["service"],
)
consumer_held = Gauge(
    "keten_consumer_held",
    "1 while a service's consumer holds a stream of an upstream because it found a gap it cannot "
    "catch up from the upstream's log (upstream down, or its answer does not verify), else 0.",
    ["service", "upstream"],
)
events_caught_up = Counter(
    "keten_events_caught_up_total",
    "Events a consumer took from an upstream's log to fill a gap in the stream it received.",
    ["service", "upstream"],
)
dead_letters = Counter(
    "keten_dead_letters_total",
    "Messages a service sent to the dead-letter exchange, by reason code.",
    ["service", "reason_code"],
)
relay_lag = Gauge(
    "keten_relay_lag_events",
    "Events stored in a service's notification log but not yet published (by the replica that publishes).",
    ["service"],
)
relay_leader = Gauge(
    "keten_relay_leader",
    "1 in the one replica of a service whose relay publishes (holds the lease), 0 in standbys.",
    ["service"],
)
log_leaves = Gauge(
    "keten_log_leaves",
    "Leaves in a service's verifiable log (decisions recorded), as of its latest signed head.",
    ["service"],
)
log_verification_failures = Gauge(
    "keten_log_verification_failures",
    "What the latest check of a service's verifiable log found wrong: stored events changed, "
    "deleted, moved or inserted against their leaves, heads the leaves do not make (0: it verifies).",
    ["service"],
)
events_published = Counter(
    "keten_events_published_total",
    "Events the relay published to keten.events (confirmed by the broker).",
    ["service"],
)
requests = Counter(
    "keten_requests_total",
    "RPC calls and HTTP requests a service answered, by kind (rpc, http), entrypoint and "
    "outcome (ok; refused: a clear error the caller can act on; error: a fault of ours).",
    ["service", "kind", "entrypoint", "outcome"],
)
request_seconds = Histogram(
    "keten_request_seconds",
    "Time to answer one RPC call or HTTP request.",
    ["service", "kind", "entrypoint"],
    buckets=LATENCY_BUCKETS,
)
share_decisions = Counter(
    "keten_share_decisions_total",
    "Share decisions, by outcome (shared, refused) and reason code.",
    ["outcome", "reason_code"],
)
notifications = Counter(
    "keten_notifications_total",
    "Notifications to data subjects, by channel and status.",
    ["channel", "status"],
)
purges = Counter(
    "keten_purges_total",
    "Purge units whose key was destroyed (crypto-shredded), by record kind (case_records, share_records).",
    ["record_kind"],
)
purges_due = Gauge(
    "keten_purges_due",
    "Purge units that were due and not suspended by a legal hold at the last planning of a purge run.",
)
deferrals_due = Gauge(
    "keten_notification_deferrals_due",
    "Deferred notifications (per safety override) whose review date has come and that no "
    "professional has ended or extended yet, as of the notification service's last delivery run.",
)
citizen_requests_overdue = Gauge(
    "keten_citizen_requests_overdue",
    "Citizens' requests past their statutory deadline (AVG art. 12(3)) without an answer, counted "
    "in consent's store when scraped (escalated by `keten requests escalate`).",
)
consistency_waits = Counter(
    "keten_consistency_waits_total",
    "Commands that sent a consistency token, by outcome: ready (the service had processed it), "
    "waited (it caught up in time) or not_caught_up (answered 409).",
    ["service", "outcome"],
)
