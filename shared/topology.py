"""Exchanges and queues of the platform, declared (idempotently) by whoever uses them.

- ``keten.events``: topic exchange of every published domain event, routing key
  ``<service>.<EventName>``; each service consumes from its own quorum queue
  ``keten.<service>.events``, bound to the events it handles.
- ``keten.commands``: topic exchange for commands from agencies, routing key
  ``<agency>.<service>.<command>``; each service that takes commands consumes its quorum queue
  ``keten.<service>.commands``, bound to ``*.<service>.*``. The broker lets each agency publish
  only routing keys that start with its own id.
- ``keten.inbox``: topic exchange of what the platform addresses to one agency (replies to its
  commands, shares made to it), routing key ``<agency>.<message>``; each agency reads only its
  own quorum queue ``keten.inbox.<agency>``, bound to ``<agency>.#``. The platform's events never
  reach it: what an agency receives is composed for it (``shared.contracts.inbox``).
- ``keten.dead-letter``: topic exchange and queue of rejected messages, each with its reason in
  the headers; quorum queues also dead-letter here after too many redeliveries.
- ``keten.unroutable``: the alternate exchange of ``keten.events``, ``keten.commands`` and
  ``keten.inbox`` (fanout) and its queue: a message with a routing key that no queue is bound to
  is kept there (and counted by RabbitMQ's queue metrics) instead of vanishing.

Service queues are quorum queues (replicated, durable) with single active consumer: several
replicas of a service may listen, one consumes at a time, so the order per upstream holds.

With the event streams partitioned by case (``KETEN_EVENT_PARTITIONS`` > 1, ``shared.partitions``)
a consuming service has one such queue per partition, ``keten.<service>.events.<n>``, fed from
``keten.events`` through its headers exchange ``keten.<service>.partitions`` (bound to the
events it handles) on the event's ``keten-partition`` header.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kombu import Exchange, Queue, binding

EVENTS_EXCHANGE = "keten.events"
COMMANDS_EXCHANGE = "keten.commands"
INBOX_EXCHANGE = "keten.inbox"
DEAD_LETTER_EXCHANGE = "keten.dead-letter"
DEAD_LETTER_QUEUE = "keten.dead-letter"
UNROUTABLE_EXCHANGE = "keten.unroutable"
#: Signed tree heads of the verifiable logs (``shared.tlog``); no alternate exchange: a head no
#: witness binds to is dropped (every head is also at ``GET /api/log/head``).
LOG_EXCHANGE = "keten.log"
UNROUTABLE_QUEUE = "keten.unroutable"
#: Redeliveries (consumer crashes mid-message) before the broker dead-letters a message.
DELIVERY_LIMIT = 20

#: What RabbitMQ does with a message no binding takes: route it to the alternate exchange.
KEEP_UNROUTABLE = {"alternate-exchange": UNROUTABLE_EXCHANGE}

unroutable_exchange = Exchange(UNROUTABLE_EXCHANGE, type="fanout", durable=True)
events_exchange = Exchange(EVENTS_EXCHANGE, type="topic", durable=True, arguments=KEEP_UNROUTABLE)
commands_exchange = Exchange(COMMANDS_EXCHANGE, type="topic", durable=True, arguments=KEEP_UNROUTABLE)
inbox_exchange = Exchange(INBOX_EXCHANGE, type="topic", durable=True, arguments=KEEP_UNROUTABLE)
dead_letter_exchange = Exchange(DEAD_LETTER_EXCHANGE, type="topic", durable=True)
log_exchange = Exchange(LOG_EXCHANGE, type="topic", durable=True)


#: Which events each service consumes: the bindings of its queue. Every publisher declares all
#: of these before its first publish, so an event is never routed to nowhere because its
#: consumer has not started yet (first deployment, or a consumer down for a while).
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "case_registration": (
        "consent.ObjectionLodged",
        "consent.ObjectionWithdrawn",
        "retention.RecordsPurged",
    ),
    "consent": (
        "case_registration.CaseRegistered",
        "case_registration.CaseActivated",
        "case_registration.CaseStopped",
        "case_registration.CaseResumed",
        "case_registration.ParticipantAdded",
        "case_registration.ParticipantRemoved",
        "case_registration.CaseClosed",
        "data_sharing.ShareCorrected",
        "retention.RecordsPurged",
    ),
    "data_sharing": (
        "case_registration.CaseRegistered",
        "case_registration.CaseActivated",
        "case_registration.CaseStopped",
        "case_registration.CaseResumed",
        "case_registration.ParticipantAdded",
        "case_registration.ParticipantRemoved",
        "case_registration.CaseClosed",
        "consent.ConsentGiven",
        "consent.ConsentWithdrawn",
        "consent.ObjectionLodged",
        "consent.ObjectionWithdrawn",
        "consent.ObjectionToAgencyLodged",
        "consent.ObjectionToAgencyEnded",
        "consent.SafetyOverrideRecorded",
        "consent.SafetyOverrideEnded",
        "retention.RecordsPurged",
    ),
    "notification": (
        "case_registration.CaseRegistered",
        "case_registration.CaseActivated",
        "case_registration.CaseStopped",
        "case_registration.CaseResumed",
        "case_registration.CaseClosed",
        "case_registration.ParticipantAdded",
        "case_registration.ParticipantRemoved",
        "consent.ConsentGiven",
        "consent.ConsentWithdrawn",
        "consent.ObjectionLodged",
        "consent.ObjectionWithdrawn",
        "consent.SafetyOverrideRecorded",
        "consent.SafetyOverrideEnded",
        "consent.CitizenRequestExtended",
        "consent.CitizenRequestAnswered",
        "consent.CitizenRequestOverdue",
        "data_sharing.DataShared",
        "data_sharing.ShareRefused",
        "data_sharing.ShareCorrected",
        "data_sharing.ErasurePassedOn",
        "retention.RecordsPurged",
        "retention.ErasureGranted",
        "retention.ErasureRefused",
    ),
    "retention": (
        "case_registration.CaseRegistered",
        "case_registration.CaseStopped",
        "case_registration.CaseResumed",
        "case_registration.CaseClosed",
        "data_sharing.DataShared",
    ),
}


#: The services with a queue of agencies' commands: those with a command in the contract
#: (``shared.contracts.commands``, which builds on this module; a test checks that they agree).
COMMAND_SERVICES: tuple[str, ...] = (
    "case_registration",
    "consent",
    "data_sharing",
    "notification",
    "retention",
)


def quorum_arguments(single_active_consumer: bool = True) -> dict[str, object]:
    return {
        "x-queue-type": "quorum",
        "x-single-active-consumer": single_active_consumer,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-delivery-limit": DELIVERY_LIMIT,
    }


def all_event_queues(partitions: int = 1) -> list[Queue]:
    return [queue for service in SUBSCRIPTIONS for queue in service_event_queues(service, partitions)]


def partition_exchange(service: str) -> Exchange:
    """Where a service's share of ``keten.events`` is split over its partition queues."""
    return Exchange(f"keten.{service}.partitions", type="headers", durable=True)


def service_event_queues(service: str, partitions: int = 1) -> list[Queue]:
    """The queues a service consumes events from: one, or one per partition."""
    if partitions <= 1:
        return [service_event_queue(service)]
    from shared.partitions import PARTITION_HEADER

    return [
        Queue(
            f"keten.{service}.events.{n}",
            bindings=[
                binding(
                    partition_exchange(service),
                    routing_key="",
                    arguments={"x-match": "all", PARTITION_HEADER: str(n)},
                )
            ],
            durable=True,
            queue_arguments=quorum_arguments(),
        )
        for n in range(partitions)
    ]


def unroutable_queue() -> Queue:
    """Where a message with a routing key that nothing is bound to ends up, for an operator."""
    return Queue(
        UNROUTABLE_QUEUE,
        exchange=unroutable_exchange,
        routing_key="",
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


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


def command_routing_key(agency: str, service: str, command: str) -> str:
    return f"{agency}.{service}.{command}"


def parse_command_routing_key(key: str) -> tuple[str, str, str] | None:
    """``(agency, service, command)``, or None for a key of another shape."""
    parts = key.split(".")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and all(parts) else None


def command_services() -> list[str]:
    """The services that take commands from agencies: those with a command in the contract."""
    return sorted(COMMAND_SERVICES)


def command_queue(service: str) -> Queue:
    """The queue a service takes agencies' commands from. No single active consumer: commands
    are independent and repeat-safe, so every replica may work on them at once."""
    return Queue(
        f"keten.{service}.commands",
        exchange=commands_exchange,
        routing_key=command_routing_key("*", service, "*"),
        durable=True,
        queue_arguments=quorum_arguments(single_active_consumer=False),
    )


def inbox_routing_key(agency: str, message: str) -> str:
    return f"{agency}.{message}"


def inbox_queue_name(agency: str) -> str:
    return f"keten.inbox.{agency}"


def inbox_queue(agency: str) -> Queue:
    """An agency's inbox: everything the platform addresses to it, and nothing else."""
    return Queue(
        inbox_queue_name(agency),
        exchange=inbox_exchange,
        routing_key=inbox_routing_key(agency, "#"),
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def inbox_agencies() -> list[str]:
    """Every agency of the catalogue has an inbox, so nothing addressed to it is routed to
    nowhere while it is not yet connected."""
    from shared.catalogue import load_catalogue

    return sorted(load_catalogue().agencies)


def platform_exchanges() -> list[Exchange]:
    """Every exchange of the platform; the alternate exchange first, so that it exists before
    anything is published to the exchanges that name it."""
    return [
        unroutable_exchange,
        commands_exchange,
        events_exchange,
        inbox_exchange,
        dead_letter_exchange,
        log_exchange,
    ]


def platform_queues(inboxes: bool = True, partitions: int = 1) -> list[Queue]:
    """Every queue of the platform, in the order they are declared and exported."""
    return [
        dead_letter_queue(),
        unroutable_queue(),
        *all_event_queues(partitions),
        *(command_queue(service) for service in command_services()),
        *(inbox_queue(agency) for agency in (inbox_agencies() if inboxes else ())),
    ]


def queue_bindings(queue: Queue) -> list[tuple[str, str]]:
    """``(exchange, routing key)`` of each binding of a queue, sorted."""
    pairs = {(b.exchange.name, b.routing_key) for b in queue.bindings}
    if queue.exchange is not None and queue.exchange.name:
        pairs.add((queue.exchange.name, queue.routing_key))
    return sorted(pairs)


def declare_topology(channel: Any, inboxes: bool = True, partitions: int = 1) -> None:
    """Declares every exchange, queue and binding of the platform (idempotent)."""
    for exchange in platform_exchanges():
        exchange(channel).declare()
    if partitions > 1:
        for service, keys in SUBSCRIPTIONS.items():
            splitter = partition_exchange(service)(channel)
            splitter.declare()
            for key in sorted(set(keys)):
                splitter.bind_to(events_exchange, routing_key=key)
    for queue in platform_queues(inboxes, partitions):
        queue(channel).declare()
