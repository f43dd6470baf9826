"""A fuzzed stream of malformed messages: every consumer keeps running, and every bad message
ends in the dead-letter queue with a reason, its sender told why."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu import Connection, Exchange, Producer

from keten.demo import CITIZEN, register_case_command
from keten_client import command_headers
from keten_client.protocol import KEY_ID_HEADER, SIGNATURE_HEADER, sign, unb64
from shared.contracts.commands import COMMAND_SCHEMAS
from shared.topology import SUBSCRIPTIONS, command_services, dead_letter_queue
from tests.factories import (
    activate_command,
    consent_command,
    objection_command,
    override_command,
    share_command,
)
from tests.support import agency_credentials, eventually, running_platform

pytestmark = pytest.mark.integration

UTRECHT = "gemeente-utrecht"
VALID = {
    "register_case": lambda: register_case_command(str(uuid.uuid4())),
    "close_case": lambda: {
        "schema_version": 1,
        "agency": UTRECHT,
        "case_id": str(uuid.uuid4()),
        "outcome": "x",
    },
    "give_consent": lambda: consent_command(str(uuid.uuid4())),
    "request_share": lambda: share_command(str(uuid.uuid4())),
    "activate_case": lambda: activate_command(str(uuid.uuid4())),
    "add_participant": lambda: {
        **activate_command(str(uuid.uuid4())),
        "participant": {"agency": "uwv", "role": "benefits_provider", "legal_ground": "legal_obligation"},
        "reason": "x",
    },
    "remove_participant": lambda: {
        **activate_command(str(uuid.uuid4())),
        "participant": "uwv",
        "reason": "x",
    },
    "withdraw_consent": lambda: {**activate_command(str(uuid.uuid4())), "subject_bsn": CITIZEN["bsn"]},
    "lodge_objection": lambda: objection_command(str(uuid.uuid4())),
    "withdraw_objection": lambda: {
        **activate_command(str(uuid.uuid4())),
        "subject_bsn": CITIZEN["bsn"],
        "objection_id": str(uuid.uuid4()),
    },
    "record_safety_override": lambda: override_command(str(uuid.uuid4()), [CITIZEN["bsn"]], agency=UTRECHT),
    "end_safety_override": lambda: {
        "schema_version": 1,
        "agency": UTRECHT,
        "override_id": str(uuid.uuid4()),
        "reason_code": "risk_resolved",
    },
    "correct_share": lambda: {
        "schema_version": 1,
        "agency": UTRECHT,
        "correction_id": str(uuid.uuid4()),
        "share_id": str(uuid.uuid4()),
        "content": "x",
        "reason_code": "factual_error",
    },
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def malformed_command(draw: Any) -> dict[str, Any]:
    service = draw(st.sampled_from(command_services()))
    names = [name for name, schema in COMMAND_SCHEMAS.items() if schema.service == service]
    command = draw(st.sampled_from([*names, "no_such_command"]))
    agency = draw(st.sampled_from([UTRECHT, UTRECHT, "agency-nobody-knows"]))
    routing_key = f"{agency}.{service}.{command}"
    fault = draw(st.sampled_from(["bytes", "json", "missing_field", "version", "signature", "unsigned"]))
    valid = VALID.get(command, VALID["register_case"])()
    if fault == "bytes":
        body = draw(st.binary(max_size=200))
    elif fault == "json":
        body = json.dumps(draw(json_values)).encode()
    elif fault == "missing_field":
        schema = COMMAND_SCHEMAS.get(command, COMMAND_SCHEMAS["register_case"])
        required = sorted(name for name, f in schema().fields.items() if f.required and name != "agency")
        valid.pop(draw(st.sampled_from(required)), None)
        body = json.dumps(valid).encode()
    elif fault == "version":
        valid["schema_version"] = draw(st.integers().filter(lambda v: v != 1))
        body = json.dumps(valid).encode()
    else:
        body = json.dumps(valid).encode()
    return {"routing_key": routing_key, "body": body, "fault": fault}


@st.composite
def malformed_event(draw: Any) -> dict[str, Any]:
    key = draw(st.sampled_from(sorted({k for keys in SUBSCRIPTIONS.values() for k in keys})))
    body = draw(st.binary(max_size=100) | json_values.map(lambda v: json.dumps(v).encode()))
    return {"routing_key": key, "body": body, "fault": "event"}


def drain(amqp_uri: str) -> list[Any]:
    with Connection(amqp_uri) as connection:
        queue = dead_letter_queue()(connection.channel())
        found = []
        while (message := queue.get(no_ack=True)) is not None:
            found.append(message)
        return found


def test_a_fuzzed_stream_of_malformed_messages_is_dead_lettered_and_every_consumer_keeps_going(
    production_env,
):
    with running_platform(production_env) as platform:
        utrecht = agency_credentials(platform.settings, UTRECHT)
        private_key = unb64(utrecht.signing_private_key)
        uri = production_env["AMQP_URI"]

        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(st.lists(malformed_command() | malformed_event(), min_size=1, max_size=12))
        def stream_is_dead_lettered(messages: list[dict[str, Any]]) -> None:
            expected: Counter[str] = Counter()
            # Publisher confirms: a quorum queue may drop what was published without them on a
            # connection that closes at once.
            with Connection(uri, transport_options={"confirm_publish": True}) as connection:
                producer = Producer(connection.channel())
                for message in messages:
                    if message["fault"] == "event":
                        exchange = Exchange("keten.events", type="topic", no_declare=True)
                        headers: dict[str, Any] = {}
                        fanout = sum(message["routing_key"] in keys for keys in SUBSCRIPTIONS.values())
                    else:
                        exchange = Exchange("keten.commands", type="topic", no_declare=True)
                        signature = sign(private_key, message["routing_key"], message["body"])
                        if message["fault"] == "signature":
                            signature = sign(private_key, "another.target", message["body"])
                        headers = (
                            {}
                            if message["fault"] == "unsigned"
                            else {
                                KEY_ID_HEADER: utrecht.key_id,
                                SIGNATURE_HEADER: signature,
                            }
                        )
                        fanout = 1
                    message_id = str(uuid.uuid4())
                    expected[message_id] = fanout
                    producer.publish(
                        message["body"],
                        exchange=exchange,
                        routing_key=message["routing_key"],
                        headers=headers,
                        message_id=message_id,
                        content_type="application/json",
                        content_encoding="binary",
                    )
            dead: list[Any] = []

            def every_message_dead_lettered() -> bool:
                dead.extend(drain(uri))
                return not expected - Counter(m.properties.get("message_id") for m in dead)

            try:
                eventually(every_message_dead_lettered, timeout=30, interval=0.2)
            finally:
                found = Counter(m.properties.get("message_id") for m in dead)
                missing = [
                    message for m, message in zip(expected, messages, strict=True) if found[m] < expected[m]
                ]
                assert not missing, missing
            assert Counter(m.properties.get("message_id") for m in dead) == expected
            for letter in dead:
                assert letter.headers["x-keten-reason-code"]
                assert letter.headers["x-keten-reason"]

        stream_is_dead_lettered()

        # Every consumer is still consuming: a good command goes through, and health is green.
        raw = json.dumps(register_case_command(str(uuid.uuid4()))).encode()
        key = f"{UTRECHT}.case_registration.register_case"
        message_id = str(uuid.uuid4())
        with Connection(uri, transport_options={"confirm_publish": True}) as connection:
            Producer(connection.channel()).publish(
                raw,
                exchange=Exchange("keten.commands", type="topic", no_declare=True),
                routing_key=key,
                headers=command_headers(utrecht.key_id, private_key, key, message_id, raw),
                message_id=message_id,
                content_type="application/json",
            )
        eventually(lambda: platform.app("case_registration").recorder.max_notification_id() == 1)
        health = requests.get(f"{platform.base_url}/health", timeout=10)
        assert health.status_code == 200, health.text
        assert drain(uri) == []
