"""No accepted event is lost or applied twice: redelivery, and a relay that dies mid-way."""

from __future__ import annotations

import pytest
import requests
from kombu import Connection, Exchange, Producer
from prometheus_client import REGISTRY

from keten.demo import CITIZEN, register_case_command
from services.case_registration.application import CaseRegistrationUseCases
from shared.contracts.commands import RegisterCaseSchema
from shared.contracts.envelope import encode_event
from shared.relay import POSITION
from tests.factories import loaded
from tests.support import RunningPlatform, eventually, running_platform, signed_as_published, signed_post

pytestmark = pytest.mark.integration


def overview_cases(base_url: str) -> list[dict]:
    token = requests.post(f"{base_url}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=5).json()[
        "token"
    ]
    response = requests.get(
        f"{base_url}/api/citizen/overview", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    return response.json()["cases"]


def handled(service: str, event: str, outcome: str) -> float:
    sample = REGISTRY.get_sample_value(
        "keten_messages_handled_total", {"service": service, "event": event, "outcome": outcome}
    )
    return sample or 0.0


def register(platform: RunningPlatform, case_id: str) -> None:
    response = signed_post(
        platform.base_url, "/api/cases", register_case_command(case_id), platform.credentials()
    )
    assert response.status_code == 201, response.text


def test_a_redelivered_event_changes_nothing(production_env):
    import uuid

    case_id = str(uuid.uuid4())
    with running_platform(production_env) as platform:
        register(platform, case_id)
        eventually(lambda: len(overview_cases(platform.base_url)) == 1)
        registration = platform.app("case_registration")
        [notification] = registration.recorder.select_notifications(start=1, limit=1)
        message = encode_event(
            registration.mapper.to_domain_event(notification), "case_registration", notification.id
        )
        notifications_app = platform.app("notification")
        before = notifications_app.position("case_registration")
        duplicates_before = handled("notification", "CaseRegistered", "duplicate")

        # The broker delivers the same event again (a consumer crashed before its ack, say).
        # Confirmed: RabbitMQ may drop unconfirmed messages to a quorum queue when the channel closes.
        with Connection(
            production_env["AMQP_URI"], transport_options={"confirm_publish": True}
        ) as connection:
            producer = Producer(connection.channel())
            for _ in range(3):
                producer.publish(
                    message.body,
                    exchange=Exchange("keten.events", type="topic", durable=True),
                    routing_key=message.routing_key,
                    headers=signed_as_published(platform.settings, message),
                    content_type="application/json",
                    content_encoding="utf-8",
                )
        eventually(lambda: handled("notification", "CaseRegistered", "duplicate") == duplicates_before + 3)

        cases = overview_cases(platform.base_url)
        assert [c["case_id"] for c in cases] == [case_id]
        assert notifications_app.position("case_registration") == before
        retention = platform.app("retention")
        schedule = retention.schedule_for(uuid.UUID(case_id))
        assert [record.record_kind for record in schedule] == ["case_records", "outcome"]


def test_events_saved_while_the_relay_was_down_are_published_when_it_comes_back(production_env):
    """A crash right after save(): nothing was published, yet nothing is lost."""
    import uuid

    from shared.config import Settings

    case_id = str(uuid.uuid4())
    # Saved by the service's application with no relay running: as if the process died
    # between the commit and the publish.
    offline = CaseRegistrationUseCases(Settings.from_env(production_env))
    offline.register_case(loaded(RegisterCaseSchema, register_case_command(case_id), offline.settings))
    assert offline.position(POSITION) == 0

    with running_platform(production_env) as platform:
        eventually(lambda: [c["case_id"] for c in overview_cases(platform.base_url)] == [case_id])
        registration = platform.app("case_registration")
        eventually(lambda: registration.position(POSITION) == registration.recorder.max_notification_id())


def test_a_relay_that_died_before_moving_its_position_republishes_harmlessly(production_env):
    """A crash after the publish but before the position was stored: events go out twice,
    consumers apply them once."""
    import uuid

    case_id = str(uuid.uuid4())
    with running_platform(production_env) as platform:
        register(platform, case_id)
        eventually(lambda: len(overview_cases(platform.base_url)) == 1)
        registration = platform.app("case_registration")
        eventually(lambda: registration.position(POSITION) >= 1)

    # Forget the relay's position, as if it had never been stored.
    with registration.sql.transaction() as cur:
        cur.execute(f"DELETE FROM {registration.name}_tracking WHERE application_name = ?", (POSITION,))

    with running_platform(production_env) as platform:
        registration = platform.app("case_registration")
        eventually(lambda: registration.position(POSITION) >= 1)
        notifications_app = platform.app("notification")
        eventually(lambda: notifications_app.position("case_registration") >= 1)
        assert [c["case_id"] for c in overview_cases(platform.base_url)] == [case_id]
        metrics = requests.get(f"{platform.base_url}/metrics", timeout=5).text
        assert (
            'keten_messages_handled_total{event="CaseRegistered",outcome="duplicate",service="notification"}'
            in metrics
        )
