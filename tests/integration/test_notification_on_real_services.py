"""Notifications on RabbitMQ and PostgreSQL, by e-mail to a real SMTP server on localhost: one
message per share and subject, also after the platform restarts and the broker redelivers, and
when the database fails to record that a message went out."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from kombu import Connection, Exchange, Producer

from keten.demo import CITIZEN, run_demo
from shared.config import Settings
from shared.contracts.envelope import encode_event
from shared.pseudonym import pseudonymise
from tests.conftest import secrets_env
from tests.support import eventually, notifying_env, running_platform
from tests.unit.test_retention import Platform

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
        ).to_json()
        [case] = [c for c in overview["cases"] if c["case_id"] == result.case_id]
        [share] = case["shares"]
        assert share["notification"]["status"] == "sent" and share["notification"]["channel"] == "email"


def test_a_database_that_fails_to_record_sent_once_gets_it_recorded_and_the_citizen_one_mail(
    postgres_dsn, pg_schema, mailbox, tmp_path
):
    """Issue 12: the mail server accepted the notice and PostgreSQL failed the write of
    ``NotificationSent`` (once, a serialization failure raised by a trigger): the record is
    retried, never the send; minutes later nothing goes out again."""
    settings = Settings.from_env(
        {
            "DATABASE_URL": postgres_dsn,
            "DATABASE_SCHEMA": pg_schema,
            "KETEN_SMTP_HOST": "127.0.0.1",
            "KETEN_SMTP_PORT": str(mailbox.port),
            "KETEN_NOTIFY_BUNDLE_SECONDS": "0",
            "KETEN_LETTER_DIR": str(tmp_path / "letters"),
            **secrets_env(),
        }
    )
    platform = Platform(settings)
    platform.share(platform.register())
    fault = psycopg2.connect(postgres_dsn)
    fault.autocommit = True
    try:
        with fault.cursor() as cur:
            fails_once_on_sent(cur, pg_schema)
        now = datetime.now(UTC)
        assert platform.notification.dispatch_due(now + timedelta(seconds=1)) == 1
        assert platform.notification.dispatch_due(now + timedelta(minutes=10)) == 0
        with fault.cursor() as cur:
            cur.execute(f'SELECT last_value FROM "{pg_schema}".fails_once_on_sent')
            assert cur.fetchone()[0] == 2, "the write failed once, then went through"
    finally:
        fault.close()
    [mail] = mailbox.messages
    assert mail["To"] == CITIZEN["email"]
    [case] = platform.notification.overview_for(platform.subject).to_json()["cases"]
    [share] = case["shares"]
    assert share["notification"]["status"] == "sent"


def fails_once_on_sent(cur, schema: str) -> None:
    """A trigger on the notification service's event table that fails the first write of a
    ``NotificationSent`` (as a serialization failure: the error PostgreSQL gives a transaction
    it cannot commit), and lets every later write through."""
    cur.execute(f'CREATE SEQUENCE "{schema}".fails_once_on_sent')
    cur.execute(
        f'CREATE FUNCTION "{schema}".fails_once_on_sent() RETURNS trigger LANGUAGE plpgsql AS $$'
        " BEGIN"
        "   IF NEW.topic LIKE '%.NotificationSent' THEN"
        f"    IF nextval('\"{schema}\".fails_once_on_sent') = 1 THEN"
        "       RAISE EXCEPTION 'failed once for the test' USING ERRCODE = 'serialization_failure';"
        "     END IF;"
        "   END IF;"
        "   RETURN NEW;"
        " END $$"
    )
    cur.execute(
        f'CREATE TRIGGER fails_once_on_sent BEFORE INSERT ON "{schema}".notification_events'
        f' FOR EACH ROW EXECUTE FUNCTION "{schema}".fails_once_on_sent()'
    )
