"""Events prove their origin and their order: a forged event changes nothing, a lost event is
caught up from its upstream's log (held while the upstream is down), and an upstream restored
from backup is caught as a conflict, never taken for duplicates."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import psycopg2
import pytest
import requests
from kombu import Connection, Exchange, Producer
from prometheus_client import REGISTRY

from keten.demo import CITIZEN, register_case_command
from shared.config import generate_secret
from shared.consumer import EventConsumer
from shared.contracts.envelope import encode_event
from shared.provenance import EventKeys
from shared.topology import SUBSCRIPTIONS, dead_letter_queue
from tests.conftest import RABBIT_AUTH
from tests.support import RunningPlatform, eventually, running_platform, signed_post

pytestmark = pytest.mark.integration

SUBSCRIBERS = sorted(s for s, keys in SUBSCRIPTIONS.items() if "case_registration.CaseRegistered" in keys)
EVERY_SERVICE_BUT = lambda *left_out: [  # noqa: E731
    s
    for s in ("case_registration", "consent", "data_sharing", "notification", "retention", "gateway")
    if s not in left_out
]


def overview_case_ids(platform: RunningPlatform) -> list[str]:
    base = platform.base_url
    token = requests.post(f"{base}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=5).json()[
        "token"
    ]
    overview = requests.get(
        f"{base}/api/citizen/overview", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    return sorted(case["case_id"] for case in overview["cases"])


def register(platform: RunningPlatform) -> str:
    case_id = str(uuid.uuid4())
    response = signed_post(
        platform.base_url, "/api/cases", register_case_command(case_id), platform.credentials()
    )
    assert response.status_code == 201, response.text
    return case_id


def taken_everywhere(platform: RunningPlatform, services: list[str] = SUBSCRIBERS) -> int:
    """Waits until every subscriber reached case_registration's newest position; returns it."""
    newest = platform.app("case_registration").recorder.max_notification_id()

    def reached() -> bool:
        return all(platform.app(s).position("case_registration") >= newest for s in services)

    eventually(reached, timeout=30)
    return int(newest)


def publish(amqp_uri: str, body: bytes, routing_key: str, headers: dict[str, Any]) -> None:
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        Producer(connection.channel()).publish(
            body,
            exchange=Exchange("keten.events", type="topic", durable=True),
            routing_key=routing_key,
            headers=headers,
            content_type="application/json",
            content_encoding="utf-8",
        )


def dead_letters(amqp_uri: str, wanted: int, timeout: float = 45) -> list[tuple[str, str]]:
    collected: list[Any] = []

    def drained() -> list[Any]:
        with Connection(amqp_uri) as connection:
            queue = dead_letter_queue()(connection.channel())
            queue.declare()
            while (message := queue.get(no_ack=True)) is not None:
                collected.append(message)
        return collected if len(collected) >= wanted else []

    eventually(drained, timeout=timeout, interval=0.5)
    return sorted((m.headers["x-keten-service"], m.headers["x-keten-reason-code"]) for m in collected)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_forged_events_are_dead_lettered_and_change_nothing(production_env):
    with running_platform(production_env) as platform:
        genuine = register(platform)
        reached = taken_everywhere(platform)
        registration = platform.app("case_registration")
        [stored] = registration.recorder.select_notifications(start=reached, limit=1)
        # A copy of a real event about a case that does not exist, its position raised far
        # ahead: it would make every genuine event below it look like a duplicate.
        forged_case = str(uuid.uuid4())
        message = encode_event(registration.mapper.to_domain_event(stored), "case_registration", 1000)
        assert message is not None
        body = json.loads(message.body)
        body["aggregate_id"] = body["data"]["case_id"] = forged_case
        body["message_id"] = str(uuid.uuid4())
        forged = json.dumps(body).encode()
        rejected_before = sample("keten_dead_letters_total", service="notification", reason_code="unsigned")

        amqp = production_env["AMQP_URI"]
        publish(amqp, forged, message.routing_key, {})  # unsigned
        outsider = EventKeys(generate_secret().encode()).sign("case_registration", forged)
        publish(amqp, forged, message.routing_key, outsider.headers())  # another platform's key
        wrong_service = EventKeys.for_settings(platform.settings).sign("consent", forged)
        publish(amqp, forged, message.routing_key, wrong_service.headers())  # consent's key

        reasons = dead_letters(amqp, wanted=3 * len(SUBSCRIBERS))
        assert reasons == sorted(
            (service, code)
            for service in SUBSCRIBERS
            for code in ("unsigned", "bad_signature", "bad_signature")
        )
        assert (
            sample("keten_dead_letters_total", service="notification", reason_code="unsigned")
            == rejected_before + 1
        )

        # Nothing changed, and the next genuine event is taken as always.
        assert all(platform.app(s).position("case_registration") == reached for s in SUBSCRIBERS)
        later = register(platform)
        taken_everywhere(platform)
        eventually(lambda: overview_case_ids(platform) == sorted([genuine, later]))


def test_a_lost_event_is_caught_up_from_the_upstream_and_held_while_the_upstream_is_down(
    production_env, rabbit
):
    with running_platform(production_env) as platform:
        first = register(platform)
        taken_everywhere(platform)

    with running_platform(production_env, EVERY_SERVICE_BUT("notification")) as platform:
        lost = register(platform)
        taken_everywhere(platform, [s for s in SUBSCRIBERS if s != "notification"])
        # The event never reaches notification: as if the broker lost it.
        purge = f"{rabbit.api}/queues/{quote(rabbit.vhost, safe='')}/keten.notification.events/contents"
        eventually(lambda: rabbit.queue("keten.notification.events").get("messages", 0) >= 1, timeout=20)
        requests.delete(purge, auth=RABBIT_AUTH, timeout=10).raise_for_status()
        after_the_gap = register(platform)
        taken_everywhere(platform, [s for s in SUBSCRIBERS if s != "notification"])

    caught_before = sample(
        "keten_events_caught_up_total", service="notification", upstream="case_registration"
    )
    with running_platform(production_env, ["notification", "gateway"]) as platform:
        consumer = next(
            e for e in platform.container("notification").extensions if isinstance(e, EventConsumer)
        )
        # The next event shows the gap; case_registration is down, so the stream is held.
        eventually(lambda: consumer.status() == "held", timeout=30)
        assert sample("keten_consumer_held", service="notification", upstream="case_registration") == 1
        assert consumer.health_report() == ({"consumer": "held", "held_upstream": "case_registration"}, False)
        assert overview_case_ids(platform) == [first]

        with running_platform(production_env, ["case_registration"]):
            eventually(
                lambda: overview_case_ids(platform) == sorted([first, lost, after_the_gap]), timeout=60
            )
            eventually(lambda: consumer.status() == "ok")
            assert sample("keten_consumer_held", service="notification", upstream="case_registration") == 0
            caught = sample(
                "keten_events_caught_up_total", service="notification", upstream="case_registration"
            )
            assert caught == caught_before + 1, "the lost event, from case_registration's log"


def test_an_upstream_restored_from_backup_is_a_conflict_not_a_duplicate(production_env, postgres_dsn):
    schema = production_env["DATABASE_SCHEMA"]
    with running_platform(production_env) as platform:
        first = register(platform)
        taken_everywhere(platform)
    tables = _backup(postgres_dsn, schema, "case_registration_")

    with running_platform(production_env) as platform:
        second = register(platform)
        taken_everywhere(platform)
    _restore(postgres_dsn, schema, tables)

    conflicts_before = sample("keten_dead_letters_total", service="notification", reason_code="conflict")
    with running_platform(production_env) as platform:
        # case_registration lost `second` and hands its positions out again, to another case.
        third = register(platform)
        assert third not in (first, second)
        reasons = dead_letters(production_env["AMQP_URI"], wanted=len(SUBSCRIBERS))
        assert reasons == sorted((service, "conflict") for service in SUBSCRIBERS)
        assert sample("keten_dead_letters_total", service="notification", reason_code="conflict") == (
            conflicts_before + 1
        )
        assert overview_case_ids(platform) == sorted([first, second]), "nothing of the conflicting event"


def _backup(dsn: str, schema: str, prefix: str) -> list[str]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_name LIKE %s",
            (schema, prefix + "%"),
        )
        tables = [row[0] for row in cur.fetchall()]
        for table in tables:
            cur.execute(f'CREATE TABLE "{schema}"."backup_{table}" AS TABLE "{schema}"."{table}"')
    conn.close()
    return tables


def _restore(dsn: str, schema: str, tables: list[str]) -> None:
    """What restoring these tables from the backup does: their rows, and the sequence of
    notification ids back where it was."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        for table in tables:
            cur.execute(f'TRUNCATE "{schema}"."{table}"')
            cur.execute(f'INSERT INTO "{schema}"."{table}" SELECT * FROM "{schema}"."backup_{table}"')
        events = f'"{schema}"."case_registration_events"'
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{events}', 'notification_id'),"
            f" (SELECT MAX(notification_id) FROM {events}))"
        )
    conn.close()


def test_the_lost_last_event_of_a_quiet_stream_is_found_by_the_periodic_look(production_env, rabbit):
    with running_platform(production_env, EVERY_SERVICE_BUT("notification")) as platform:
        lost = register(platform)
        taken_everywhere(platform, [s for s in SUBSCRIBERS if s != "notification"])
        purge = f"{rabbit.api}/queues/{quote(rabbit.vhost, safe='')}/keten.notification.events/contents"
        eventually(lambda: rabbit.queue("keten.notification.events").get("messages", 0) >= 1, timeout=20)
        requests.delete(purge, auth=RABBIT_AUTH, timeout=10).raise_for_status()

    # No event follows the lost one; notification looks at case_registration's log by itself.
    looking = {**production_env, "KETEN_CATCH_UP_INTERVAL": "1"}
    with running_platform(looking, ["notification", "case_registration", "gateway"]) as platform:
        eventually(lambda: overview_case_ids(platform) == [lost], timeout=30)
