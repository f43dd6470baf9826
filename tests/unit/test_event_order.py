"""How a consumer takes the events of a stream, on in-memory stores: in order, a duplicate once,
a gap caught up from the upstream's log, a conflict never, and a dropped subscription no
conflict. The upstream is case_registration; what its relay publishes is what arrives."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.case_registration.application import CaseRegistrationUseCases
from shared.application import KetenApplication
from shared.catchup import CatchUpUnavailable, PageRequest, published_events_page
from shared.consumer import EventConsumer
from shared.contracts.commands import ActivateCase, RegisterCaseSchema
from shared.contracts.envelope import ReceivedEvent
from shared.provenance import EventKeys
from shared.relay import EventRelay
from tests.factories import case_command, loaded


class Downstream(KetenApplication):
    name = "downstream"


@dataclass(eq=False)
class Handler:
    """Stands in for an ``@consumes`` entrypoint: records what it took, with its tracking."""

    app: Downstream
    event_name: str
    taken: list[tuple[str, int]]
    source: str = "case_registration"
    method_name: str = "handle"

    @property
    def routing_key(self) -> str:
        return f"{self.source}.{self.event_name}"

    def run(self, event: ReceivedEvent[Any]) -> None:
        self.app.save_tracked(event.tracking)
        self.taken.append((event.name, event.position))


@dataclass
class Message:
    body: bytes
    headers: dict[str, Any]
    routing_key: str
    acked: bool = False
    delivery_info: dict[str, Any] = field(init=False)
    properties: dict[str, Any] = field(default_factory=dict)
    content_type: str = "application/json"
    content_encoding: str = "utf-8"

    def __post_init__(self) -> None:
        self.delivery_info = {"routing_key": self.routing_key}

    def ack(self) -> None:
        self.acked = True


class Publisher:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def publish(self, messages: list[Any], exchange: Any = None) -> None:
        self.messages.extend(messages)


@pytest.fixture
def upstream(memory_settings):
    app = CaseRegistrationUseCases(memory_settings)
    for _ in range(2):
        status = app.register_case(loaded(RegisterCaseSchema, case_command(), app.settings))
        app.activate_case(ActivateCase(agency="gemeente-utrecht", case_id=status.case_id))
    return app  # positions 1 and 3: CaseRegistered; 2 and 4: CaseActivated


def relayed(app: Any) -> list[Message]:
    publisher = Publisher()
    EventRelay(app, "case_registration", publisher).publish_pending()  # type: ignore[arg-type]
    return [
        Message(m.body, m.headers, m.routing_key)
        for m in publisher.messages
        if m.routing_key.startswith("case_registration.")
    ]


class Consumer:
    """An ``EventConsumer`` of a downstream service, its container's parts stood in for."""

    def __init__(self, upstream: Any, memory_settings: Any, kinds: tuple[str, ...]):
        self.app = Downstream(memory_settings)
        self.taken: list[tuple[str, int]] = []
        self.asked: list[PageRequest] = []
        self.upstream_down = False
        consumer = EventConsumer()
        consumer.service = "downstream"
        consumer.settings = memory_settings
        consumer.keys = EventKeys.for_settings(memory_settings).know("case_registration")
        consumer.publisher = Publisher()  # type: ignore[assignment]
        consumer.application = lambda: self.app  # type: ignore[method-assign]
        consumer._providers = {Handler(self.app, kind, self.taken) for kind in kinds}  # type: ignore[misc]

        def ask_upstream(source: str, asked: PageRequest) -> Any:
            if self.upstream_down:
                raise CatchUpUnavailable("catch_up_unavailable", "down")
            self.asked.append(asked)
            return published_events_page(upstream, asked.as_dict())

        consumer.ask_upstream = ask_upstream  # type: ignore[method-assign]
        self.consumer = consumer

    def receive(self, *messages: Message) -> None:
        for message in messages:
            self.consumer.on_message(message)
            assert message.acked

    @property
    def dead_letters(self) -> list[str]:
        return [m.headers["x-keten-reason-code"] for m in self.consumer.publisher.messages]  # type: ignore[union-attr]


BOTH = ("CaseActivated", "CaseRegistered")


def test_events_in_order_are_taken_once_each_and_a_redelivery_changes_nothing(upstream, memory_settings):
    consumer = Consumer(upstream, memory_settings, BOTH)
    first, second, third, fourth = relayed(upstream)
    consumer.receive(first, second, first, third, fourth, third)
    assert consumer.taken == [
        ("CaseRegistered", 1),
        ("CaseActivated", 2),
        ("CaseRegistered", 3),
        ("CaseActivated", 4),
    ]
    assert consumer.asked == [] and consumer.dead_letters == []


def test_a_consumer_of_some_kinds_expects_only_those_before_each_event(upstream, memory_settings):
    consumer = Consumer(upstream, memory_settings, ("CaseRegistered",))
    first, _, third, _ = relayed(upstream)
    consumer.receive(first, third)
    assert consumer.taken == [("CaseRegistered", 1), ("CaseRegistered", 3)]
    assert consumer.asked == [], "the activation between them is no gap for it"


def test_a_gap_is_caught_up_from_the_upstreams_log_before_the_event(upstream, memory_settings):
    consumer = Consumer(upstream, memory_settings, BOTH)
    first, second, third, fourth = relayed(upstream)
    consumer.receive(first, fourth)
    assert consumer.taken == [
        ("CaseRegistered", 1),
        ("CaseActivated", 2),
        ("CaseRegistered", 3),
        ("CaseActivated", 4),
    ]
    assert [(a.after, a.before) for a in consumer.asked] == [(1, 4)]
    consumer.receive(second, third)  # the lost messages turn up after all: duplicates
    assert len(consumer.taken) == 4 and consumer.dead_letters == []


def test_a_gap_the_upstream_cannot_fill_now_holds_the_stream(upstream, memory_settings):
    consumer = Consumer(upstream, memory_settings, BOTH)
    first, _, _, fourth = relayed(upstream)
    consumer.receive(first)
    consumer.upstream_down = True
    with pytest.raises(CatchUpUnavailable):
        consumer.consumer.take(next(iter(consumer.consumer._providers)), _event(fourth), fourth, BOTH)
    assert consumer.taken == [("CaseRegistered", 1)], "nothing skipped"


def test_another_event_at_a_taken_position_is_a_conflict_and_changes_nothing(upstream, memory_settings):
    consumer = Consumer(upstream, memory_settings, BOTH)
    first, second, *_ = relayed(upstream)
    consumer.receive(first, second)
    # The upstream restored from a backup taken after the first event: position 2 handed out again.
    restored = CaseRegistrationUseCases(memory_settings)
    restored.register_case(loaded(RegisterCaseSchema, case_command(), restored.settings))
    restored.register_case(loaded(RegisterCaseSchema, case_command(), restored.settings))
    _, again = relayed(restored)
    consumer.receive(again)
    assert consumer.dead_letters == ["conflict"]
    assert consumer.taken == [("CaseRegistered", 1), ("CaseActivated", 2)]


def test_a_chain_that_skips_a_kind_the_consumer_no_longer_takes_is_no_conflict(upstream, memory_settings):
    consumer = Consumer(upstream, memory_settings, BOTH)
    first, second, third, _ = relayed(upstream)
    consumer.receive(first, second)
    # A release drops the handler of activations.
    consumer.consumer._providers = {  # type: ignore[misc]
        p for p in consumer.consumer._providers if p.event_name == "CaseRegistered"
    }
    consumer.receive(third)
    assert consumer.taken[-1] == ("CaseRegistered", 3) and consumer.dead_letters == []


def test_an_event_with_a_forged_chain_is_a_conflict(upstream, memory_settings):
    consumer = Consumer(upstream, memory_settings, BOTH)
    first, second, third, _ = relayed(upstream)
    consumer.receive(first, second)
    # Signed with the key (a process that holds it), claiming nothing of its kinds came before.
    body = json.loads(third.body)
    body["previous"] = {}
    forged = json.dumps(body).encode()
    headers = {
        **third.headers,
        **EventKeys.for_settings(memory_settings).sign("case_registration", forged).headers(),
    }
    consumer.receive(Message(forged, headers, third.routing_key))
    assert consumer.dead_letters == ["conflict"]
    assert consumer.taken == [("CaseRegistered", 1), ("CaseActivated", 2)]


def _event(message: Message) -> ReceivedEvent[Any]:
    from shared.contracts.envelope import decode_event

    return decode_event(message.body)
