"""Bad messages are rejected to the dead-letter queue with a reason; consumers keep going."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from kombu import Connection, Exchange, Producer

from keten.demo import CITIZEN, register_case_command
from shared.provenance import EventKeys
from shared.topology import SUBSCRIPTIONS, dead_letter_queue
from tests.support import eventually, running_platform, signed_post

pytestmark = pytest.mark.integration

SUBSCRIBERS = sorted(
    service for service, keys in SUBSCRIPTIONS.items() if "case_registration.CaseRegistered" in keys
)


def drain_dead_letters(amqp_uri: str) -> list:
    messages = []
    with Connection(amqp_uri) as connection:
        queue = dead_letter_queue()(connection.channel())
        queue.declare()
        while (message := queue.get(no_ack=True)) is not None:
            messages.append(message)
    return messages


def test_malformed_events_are_dead_lettered_with_a_reason_and_the_consumers_keep_going(production_env):
    bad_bodies = {
        "not_json": b"\x00\x01 this is not json",
        "invalid_field": json.dumps({"schema_version": 99, "event": "CaseRegistered"}).encode(),
        "unknown_event": json.dumps(
            {
                "schema_version": 1,
                "message_id": str(uuid.uuid4()),
                "event": "CaseTeleported",
                "source": "case_registration",
                "position": 1,
                "occurred_at": "2026-11-28T10:00:00+00:00",
                "aggregate_id": str(uuid.uuid4()),
                "aggregate_version": 1,
                "data": {},
            }
        ).encode(),
    }
    with running_platform(production_env) as platform:
        # With publisher confirms, as agencies publish (docs/agencies.md): without them RabbitMQ
        # may drop the last messages sent to a quorum queue on a channel that closes at once.
        with Connection(
            production_env["AMQP_URI"], transport_options={"confirm_publish": True}
        ) as connection:
            producer = Producer(connection.channel())
            # Signed with case_registration's key, as a service with a bug would publish them:
            # past the signature, each fails on what it says (unsigned ones: test_event_integrity).
            keys = EventKeys.for_settings(platform.settings)
            for body in bad_bodies.values():
                producer.publish(
                    body,
                    headers=keys.sign("case_registration", body).headers(),
                    exchange=Exchange("keten.events", type="topic", durable=True),
                    routing_key="case_registration.CaseRegistered",
                    content_type="application/json",
                    content_encoding="binary",
                )

        def all_dead_lettered() -> list:
            collected.extend(drain_dead_letters(production_env["AMQP_URI"]))
            return collected if len(collected) >= len(bad_bodies) * len(SUBSCRIBERS) else []

        collected: list = []
        # Four consumers, three messages each, on a broker shared with the rest of the suite.
        dead = eventually(all_dead_lettered, timeout=45)
        reasons = sorted((m.headers["x-keten-service"], m.headers["x-keten-reason-code"]) for m in dead)
        assert reasons == sorted((s, code) for s in SUBSCRIBERS for code in bad_bodies)
        assert all(
            m.headers["x-keten-original-routing-key"] == "case_registration.CaseRegistered" for m in dead
        )
        bodies = {m.body.encode() if isinstance(m.body, str) else m.body for m in dead}
        assert bodies == set(bad_bodies.values()), "dead letters keep the original body"

        # Every consumer is still running: a good case reaches the overview.
        case_id = str(uuid.uuid4())
        response = signed_post(
            platform.base_url, "/api/cases", register_case_command(case_id), platform.credentials()
        )
        assert response.status_code == 201
        token = requests.post(
            f"{platform.base_url}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=5
        ).json()["token"]

        def case_in_overview() -> bool:
            overview = requests.get(
                f"{platform.base_url}/api/citizen/overview",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            ).json()
            return [c["case_id"] for c in overview["cases"]] == [case_id]

        eventually(case_in_overview)

        def every_subscriber_took_the_case() -> bool:
            # The overview is notification's; the other subscribers catch up on their own time.
            positions = {
                service: platform.app(service).position("case_registration") for service in SUBSCRIBERS
            }
            assert positions == dict.fromkeys(SUBSCRIBERS, 1)
            return True

        eventually(every_subscriber_took_the_case)
