"""Notifications on RabbitMQ and PostgreSQL, by e-mail to a real SMTP server on localhost: one
message per share and subject, also after the platform restarts and the broker redelivers."""

from __future__ import annotations

import time

import pytest
from kombu import Connection, Exchange, Producer

from keten.demo import CITIZEN, run_demo
from shared.contracts.envelope import encode_event
from shared.pseudonym import pseudonymise
from tests.support import eventually, notifying_env, running_platform

pytestmark = pytest.mark.integration


def test_restart_and_redelivery_send_nothing_twice(production_env, mailbox, tmp_path):
    env = notifying_env(production_env, mailbox, tmp_path / "letters")
    with running_platform(env) as platform:
        result = run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())
        eventually(lambda: mailbox.messages, timeout=30)
        sharing = platform.app("data_sharing")
        shared = [
            encode_event(sharing.mapper.to_domain_event(n), "data_sharing", n.id)
            for n in sharing.recorder.select_notifications(start=1, limit=100)
        ]
        [message] = [m for m in shared if m is not None and m.routing_key == "data_sharing.DataShared"]

    # The platform restarts: relays publish from their positions, consumers skip what they had.
    with running_platform(env) as platform:
        # The broker delivers the share's event again, twice.
        # Confirmed: RabbitMQ may drop unconfirmed messages to a quorum queue when the channel closes.
        with Connection(env["AMQP_URI"], transport_options={"confirm_publish": True}) as connection:
            producer = Producer(connection.channel())
            for _ in range(2):
                producer.publish(
                    message.body,
                    exchange=Exchange("keten.events", type="topic", durable=True),
                    routing_key=message.routing_key,
                    content_type="application/json",
                    content_encoding="utf-8",
                )
        notifications = platform.app("notification")
        assert notifications.dispatch_due() == 0
        time.sleep(3)  # several delivery runs of the service's own timer
        assert len(mailbox.messages) == 1
        [mail] = mailbox.messages
        assert mail["To"] == CITIZEN["email"] and "Kredietbank Utrecht" in mail.get_content()
        overview = notifications.overview_for(
            pseudonymise(CITIZEN["bsn"], platform.settings.pseudonym_secret)
        )
        [case] = [c for c in overview["cases"] if c["case_id"] == result.case_id]
        [share] = case["shares"]
        assert share["notification"]["status"] == "sent" and share["notification"]["channel"] == "email"
