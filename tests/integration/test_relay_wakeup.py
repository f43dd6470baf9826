"""The relay does nothing while nothing happens, and publishes at once when anything commits
events to its store: a save in its own process, or one by another process (a replica taking a
command, ``keten purge``), which reaches it through PostgreSQL's LISTEN/NOTIFY. Its fallback
poll here is a minute, so only the wake-up can explain an event published within seconds."""

from __future__ import annotations

import threading
import time

import pytest
from kombu import Connection, Queue

from services.case_registration.application import CaseRegistrationUseCases
from shared.config import Settings
from shared.contracts.commands import RegisterCaseSchema
from shared.relay import RelayLoop
from shared.topology import declare_topology, events_exchange
from tests.factories import case_command, loaded

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(production_env):
    return Settings.from_env({**production_env, "KETEN_RELAY_INTERVAL": "60"})


def published(settings: Settings, queue: Queue, within: float) -> list[str]:
    """Routing keys of the events that reached ``queue`` within ``within`` seconds."""
    keys: list[str] = []
    deadline = time.monotonic() + within
    with Connection(settings.amqp_uri) as connection:
        bound = queue(connection.channel())
        while time.monotonic() < deadline and not keys:
            message = bound.get(no_ack=True)
            if message is None:
                time.sleep(0.1)
            else:
                keys.append(message.delivery_info["routing_key"])
    return keys


def test_an_event_saved_by_another_process_is_published_at_once(settings):
    with Connection(settings.amqp_uri) as connection:
        channel = connection.channel()
        declare_topology(channel, inboxes=False)
        queue = Queue("test.watch", exchange=events_exchange, routing_key="case_registration.#")
        queue(channel).declare()
    relaying = CaseRegistrationUseCases(settings)
    loop = RelayLoop(relaying, "case_registration", settings)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    # Another process's application: its saves do not reach this one's in-process listeners.
    elsewhere = CaseRegistrationUseCases(settings)
    try:
        deadline = time.monotonic() + 20
        while loop.relay is None and time.monotonic() < deadline:
            time.sleep(0.1)  # the relay took its lease and is listening
        time.sleep(1.0)

        elsewhere.register_case(loaded(RegisterCaseSchema, case_command(), settings))

        assert published(settings, queue, within=10) == ["case_registration.CaseRegistered"]
    finally:
        loop.stop()
        thread.join(timeout=10)
        elsewhere.close()
        relaying.close()
