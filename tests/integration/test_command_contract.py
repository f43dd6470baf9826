"""What docs/asyncapi.yaml promises about a command's AMQP properties, on RabbitMQ: a command
without a message_id is refused with a reason and not carried out (its answer could not be
matched to it). That an answer asking for a retry is no dead letter: test_agency_bus."""

from __future__ import annotations

import json
import uuid

import pytest
from kombu import Connection, Exchange, Producer

from keten.demo import register_case_command
from keten_client import AgencyClient, CommandFailed, command_headers
from keten_client.protocol import unb64
from shared.agencies import register_new_credentials
from tests.factories import activate_command
from tests.support import eventually, running_platform

pytestmark = pytest.mark.integration

UTRECHT = "gemeente-utrecht"


def test_a_command_without_message_id_is_refused_with_its_reason_and_not_carried_out(production_env):
    with running_platform(production_env, ["case_registration"]) as platform:
        utrecht = register_new_credentials(platform.settings, UTRECHT, amqp_url=production_env["AMQP_URI"])
        case = register_case_command(str(uuid.uuid4()))
        raw = json.dumps(case).encode()
        routing_key = f"{UTRECHT}.case_registration.register_case"
        signed_for = str(uuid.uuid4())  # signed as if it had one, published without it
        headers = command_headers(
            utrecht.key_id, unb64(utrecht.signing_private_key), routing_key, signed_for, raw
        )
        with Connection(production_env["AMQP_URI"]) as connection:
            Producer(connection.channel()).publish(
                raw,
                exchange=Exchange("keten.commands", type="topic", no_declare=True),
                routing_key=routing_key,
                headers=headers,
                content_type="application/json",
                delivery_mode=2,
            )
        with AgencyClient(utrecht) as client:
            [rejected] = eventually(
                lambda: [m for m in client.inbox(timeout=1) if m.name == "CommandRejected"], timeout=15
            )
            assert rejected.data["error"]["code"] == "message_id_missing"
            assert rejected.data["in_reply_to"] is None
            # Not carried out: the case was never registered.
            with pytest.raises(CommandFailed) as unknown:
                client.request("case_registration", "activate_case", activate_command(case["case_id"]))
            assert unknown.value.error["code"] == "unknown_case"
