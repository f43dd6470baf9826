"""Exchanges and queues of the platform, declared (idempotently) by whoever uses them.

- ``keten.events``: topic exchange of every published domain event, routing key
  ``<service>.<EventName>``; each service consumes from its own quorum queue
  ``keten.<service>.events``, bound to the events it handles.
- ``keten.commands``: topic exchange for commands from agencies (``<service>.<command>``).
- ``keten.dead-letter``: topic exchange and queue of rejected messages, each with its reason in
  the headers; quorum queues also dead-letter here after too many redeliveries.

Service queues are quorum queues (replicated, durable) with single active consumer: several
replicas of a service may listen, one consumes at a time, so the order per upstream holds.
"""

from __future__ import annotations

from collections.abc import Iterable

from kombu import Exchange, Queue, binding

EVENTS_EXCHANGE = "keten.events"
COMMANDS_EXCHANGE = "keten.commands"
DEAD_LETTER_EXCHANGE = "keten.dead-letter"
DEAD_LETTER_QUEUE = "keten.dead-letter"
#: Redeliveries (consumer crashes mid-message) before the broker dead-letters a message.
DELIVERY_LIMIT = 20

events_exchange = Exchange(EVENTS_EXCHANGE, type="topic", durable=True)
commands_exchange = Exchange(COMMANDS_EXCHANGE, type="topic", durable=True)
dead_letter_exchange = Exchange(DEAD_LETTER_EXCHANGE, type="topic", durable=True)


#: Which events each service consumes: the bindings of its queue. Every publisher declares all
#: of these before its first publish, so an event is never routed to nowhere because its
#: consumer has not started yet (first deployment, or a consumer down for a while).
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "case_registration": ("retention.RecordsPurged",),
    "consent": (
        "case_registration.CaseRegistered",
        "case_registration.CaseClosed",
        "retention.RecordsPurged",
    ),
    "data_sharing": (
        "case_registration.CaseRegistered",
        "case_registration.CaseClosed",
        "consent.ConsentGiven",
        "retention.RecordsPurged",
    ),
    "notification": (
        "case_registration.CaseRegistered",
        "case_registration.CaseClosed",
        "consent.ConsentGiven",
        "data_sharing.DataShared",
        "data_sharing.ShareRefused",
        "retention.RecordsPurged",
        "retention.ErasureGranted",
        "retention.ErasureRefused",
    ),
    "retention": (
        "case_registration.CaseRegistered",
        "case_registration.CaseClosed",
        "data_sharing.DataShared",
    ),
}


def quorum_arguments(single_active_consumer: bool = True) -> dict[str, object]:
    return {
        "x-queue-type": "quorum",
        "x-single-active-consumer": single_active_consumer,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-delivery-limit": DELIVERY_LIMIT,
    }


def all_event_queues() -> list[Queue]:
    return [service_event_queue(service) for service in SUBSCRIPTIONS]


def dead_letter_queue() -> Queue:
    return Queue(
        DEAD_LETTER_QUEUE,
        exchange=dead_letter_exchange,
        routing_key="#",
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def routing_key(source: str, event_name: str) -> str:
    return f"{source}.{event_name}"


def service_event_queue(service: str, routing_keys: Iterable[str] | None = None) -> Queue:
    """The queue a service consumes the events of other services from."""
    if routing_keys is None:
        routing_keys = SUBSCRIPTIONS[service]
    return Queue(
        f"keten.{service}.events",
        bindings=[binding(events_exchange, routing_key=key) for key in sorted(set(routing_keys))],
        durable=True,
        queue_arguments=quorum_arguments(),
    )
