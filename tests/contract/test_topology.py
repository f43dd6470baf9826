"""The topology every publisher declares matches what the services actually handle."""

from keten.platform import SERVICES, service_class
from shared.consumer import EventHandlerEntrypoint
from shared.contracts.commands import COMMAND_SCHEMAS
from shared.contracts.events import EVENT_SCHEMAS
from shared.topology import COMMAND_SERVICES, SUBSCRIPTIONS


def handled_routing_keys(cls: type) -> set[str]:
    keys = set()
    for attribute in vars(cls).values():
        for entrypoint in getattr(attribute, "nameko_entrypoints", ()):
            if isinstance(entrypoint, EventHandlerEntrypoint):
                keys.add(f"{entrypoint.source}.{entrypoint.event_name}")
    return keys


def test_each_service_queue_is_bound_to_exactly_the_events_it_handles():
    for name in SERVICES:
        assert handled_routing_keys(service_class(name)) == set(SUBSCRIPTIONS.get(name, ())), name


def test_every_subscribed_event_is_in_the_contract():
    for keys in SUBSCRIPTIONS.values():
        for key in keys:
            source, event = key.split(".")
            assert EVENT_SCHEMAS[event].source == source


def test_a_service_has_a_commands_queue_exactly_when_the_contract_gives_it_commands():
    assert set(COMMAND_SERVICES) == {schema.service for schema in COMMAND_SCHEMAS.values()}
