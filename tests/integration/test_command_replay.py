"""A signed command counts once and only while it is fresh: a copy taken off the wire is refused,
even after the platform restarted, and so is a command made too long ago or without a time."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kombu import Connection, Exchange, Producer

from keten.demo import register_case_command
from keten_client import AgencyClient, InboxMessage, command_headers
from keten_client.protocol import KEY_ID_HEADER, SIGNATURE_HEADER, sign, unb64
from shared.topology import dead_letter_queue
from tests.support import eventually, running_platform

pytestmark = pytest.mark.integration

KEY = "gemeente-utrecht.case_registration.register_case"


def command(credentials: Any, created: datetime | None = None) -> dict[str, Any]:
    raw = json.dumps(register_case_command(str(uuid.uuid4()))).encode()
    message_id = str(uuid.uuid4())
    private_key = unb64(credentials.signing_private_key)
    return {
        "body": raw,
        "routing_key": KEY,
        "message_id": message_id,
        "headers": command_headers(credentials.key_id, private_key, KEY, message_id, raw, created),
        "content_type": "application/json",
    }


def publish(amqp_uri: str, *messages: dict[str, Any]) -> None:
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel())
        for message in messages:
            producer.publish(exchange=Exchange("keten.commands", type="topic", no_declare=True), **message)


def answers(client: AgencyClient, count: int) -> list[InboxMessage]:
    found: list[InboxMessage] = []

    def arrived() -> list[InboxMessage]:
        found.extend(client.inbox(timeout=1))
        return found if len(found) >= count else []

    return eventually(arrived, timeout=30)


def test_a_copied_command_is_refused_even_after_a_restart_and_so_is_a_stale_one(production_env):
    uri = production_env["AMQP_URI"]
    with running_platform(production_env, ["case_registration"]) as platform:
        utrecht = dataclasses.replace(platform.credentials(), amqp_url=uri)
        original = command(utrecht)
        publish(uri, original)
        with AgencyClient(utrecht) as client:
            [accepted] = answers(client, 1)
        assert accepted.name == "CommandAccepted"
        registered = platform.app("case_registration").recorder.max_notification_id()

    with running_platform(production_env, ["case_registration"]) as platform:
        stale = command(utrecht, created=datetime.now(UTC) - timedelta(minutes=10))
        unsigned_time = command(utrecht)
        del unsigned_time["headers"]["keten-created"]
        # Signed the old way, over the routing key alone: it cannot be told from a copy.
        old_style = command(utrecht)
        old_style["headers"] = {
            KEY_ID_HEADER: utrecht.key_id,
            SIGNATURE_HEADER: sign(unb64(utrecht.signing_private_key), KEY, old_style["body"]),
            "keten-created": datetime.now(UTC).isoformat(),
        }
        publish(uri, original, stale, unsigned_time, old_style)
        with AgencyClient(utrecht) as client:
            rejected = answers(client, 4)

        codes = {m.data["in_reply_to"]: m.data["error"]["code"] for m in rejected}
        assert codes == {
            original["message_id"]: "command_replayed",
            stale["message_id"]: "command_expired",
            unsigned_time["message_id"]: "created_missing",
            old_style["message_id"]: "bad_signature",
        }
        [replayed] = [m for m in rejected if m.data["in_reply_to"] == original["message_id"]]
        assert replayed.message_id != accepted.message_id, "a refusal never passes for the first answer"
        assert platform.app("case_registration").recorder.max_notification_id() == registered

        with Connection(uri) as connection:
            queue = dead_letter_queue()(connection.channel())
            letters = []
            while (letter := queue.get(no_ack=True)) is not None:
                letters.append(letter.headers["x-keten-reason-code"])
        assert sorted(letters) == sorted(
            ["command_replayed", "command_expired", "created_missing", "bad_signature"]
        )
