"""Prometheus metrics of the platform. Labels carry names of services, events and reason codes,
never anything about a person."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

messages_handled = Counter(
    "keten_messages_handled_total",
    "Messages a service consumed, by event and outcome (processed, duplicate, rejected, failed).",
    ["service", "event", "outcome"],
)
handling_seconds = Histogram(
    "keten_message_handling_seconds",
    "Time to handle one consumed message.",
    ["service", "event"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
dead_letters = Counter(
    "keten_dead_letters_total",
    "Messages a service sent to the dead-letter exchange, by reason code.",
    ["service", "reason_code"],
)
relay_lag = Gauge(
    "keten_relay_lag_events",
    "Events stored in a service's notification log but not yet published.",
    ["service"],
)
events_published = Counter(
    "keten_events_published_total",
    "Events the relay published to keten.events (confirmed by the broker).",
    ["service"],
)
rpc_requests = Counter(
    "keten_rpc_requests_total",
    "RPC requests a service answered, by method and outcome (ok, refused, error).",
    ["service", "method", "outcome"],
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
