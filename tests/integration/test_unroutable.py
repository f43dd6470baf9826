"""A message that no queue takes is kept in keten.unroutable, not lost; and `keten migrate`
brings the exchanges of an older release to the arguments that make it so."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from kombu import Connection, Exchange, Producer

from keten_client import Credentials
from shared.broker_admin import BrokerAdmin
from shared.topology import UNROUTABLE_QUEUE, unroutable_queue
from tests.support import eventually, keten, running_platform

pytestmark = pytest.mark.integration

STRAYS = {
    "keten.events": "case_registration.CaseTeleported",
    "keten.commands": "gemeente-utrecht.no_such_service.register_case",
    "keten.inbox": "no-such-agency.ShareReceived",
}


def publish_strays(amqp_uri: str) -> None:
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel())
        for exchange, key in STRAYS.items():
            producer.publish(
                f"stray on {exchange}".encode(),
                exchange=Exchange(exchange, type="topic", no_declare=True),
                routing_key=key,
                content_type="text/plain",
            )


def kept(amqp_uri: str) -> list[tuple[str, str, bytes]]:
    found = []
    with Connection(amqp_uri) as connection:
        queue = unroutable_queue()(connection.channel())
        while (message := queue.get(no_ack=True)) is not None:
            body = message.body if isinstance(message.body, bytes) else message.body.encode()
            found.append((message.delivery_info["exchange"], message.delivery_info["routing_key"], body))
    return sorted(found)


def test_a_message_with_an_unknown_routing_key_is_kept_and_counted(production_env, rabbit):
    with running_platform(production_env, ["case_registration"]):
        publish_strays(production_env["AMQP_URI"])
        # RabbitMQ counts what waits there (rabbitmq_queue_messages, for the alert).
        eventually(lambda: rabbit.queue(UNROUTABLE_QUEUE).get("messages") == len(STRAYS), timeout=30)
        assert kept(production_env["AMQP_URI"]) == sorted(
            (exchange, key, f"stray on {exchange}".encode()) for exchange, key in STRAYS.items()
        )


def test_a_command_an_agency_sends_to_no_service_is_kept_too(production_env):
    """The agency's own broker user may publish only to keten.commands; what no queue takes
    still reaches the alternate exchange."""
    added = keten("agency", "add", "gemeente-utrecht", env=production_env)
    assert added.returncode == 0, added.stderr[-2000:]
    utrecht = Credentials.from_dict(json.loads(added.stdout))
    try:
        with running_platform(production_env, ["case_registration"]):
            with Connection(utrecht.amqp_url, transport_options={"confirm_publish": True}) as connection:
                Producer(connection.channel()).publish(
                    b"{}",
                    exchange=Exchange("keten.commands", type="topic", no_declare=True),
                    routing_key=STRAYS["keten.commands"],
                    content_type="application/json",
                )
            found: list[tuple[str, str, bytes]] = []

            def kept_it() -> bool:
                found.extend(kept(production_env["AMQP_URI"]))
                return bool(found)

            eventually(kept_it, timeout=30)
            assert found == [("keten.commands", STRAYS["keten.commands"], b"{}")]
    finally:
        BrokerAdmin.from_amqp_uri(production_env["AMQP_URI"]).delete_agency_user("gemeente-utrecht")


def test_migrate_gives_the_exchanges_of_an_older_release_their_alternate_exchange(production_env, rabbit):
    vhost = quote(rabbit.vhost, safe="")
    with Connection(production_env["AMQP_URI"]) as connection:
        channel = connection.channel()
        for name in STRAYS:  # as a release before the alternate exchange declared them
            Exchange(name, type="topic", durable=True)(channel).declare()

    migrated = keten("migrate", env=production_env)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    assert "replaced" in migrated.stderr
    for name in STRAYS:
        exchange = rabbit.get(f"/exchanges/{vhost}/{name}")
        assert exchange["arguments"] == {"alternate-exchange": "keten.unroutable"}, name

    with running_platform(production_env, ["case_registration"]):
        publish_strays(production_env["AMQP_URI"])
        found: list[tuple[str, str, bytes]] = []

        def all_kept() -> bool:
            found.extend(kept(production_env["AMQP_URI"]))
            return len(found) >= len(STRAYS)

        eventually(all_kept, timeout=30)
        assert sorted(exchange for exchange, _, _ in found) == sorted(STRAYS)
