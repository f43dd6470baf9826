"""Agencies on the real RabbitMQ: credentials from `keten agency add`, signed commands, answers
and shares in their own inbox, and a broker that keeps agencies apart."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import amqp
import pytest
from kombu import Connection, Exchange, Producer, Queue

from keten.demo import CITIZEN, register_case_command
from keten_client import AgencyClient, CommandFailed, Credentials, KeyPair, command_headers
from shared.broker_admin import BrokerAdmin
from shared.config import Settings
from shared.topology import dead_letter_queue
from tests.factories import activate_command, share_command
from tests.support import eventually, running_platform, signed_request

pytestmark = pytest.mark.integration

UTRECHT, KREDIETBANK = "gemeente-utrecht", "kredietbank-utrecht"
SHARED = "Drie maanden huurachterstand; regeling loopt."


def keten(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keten.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def agencies(production_env: dict[str, str]) -> Iterator[Any]:
    """Creates agencies with the real `keten agency add`; deletes their broker users afterwards
    (users are per broker, and the broker is shared)."""
    created: list[str] = []

    def add(agency: str) -> Credentials:
        result = keten(production_env, "agency", "add", agency)
        assert result.returncode == 0, result.stderr[-2000:]
        created.append(agency)
        return Credentials.from_dict(json.loads(result.stdout))

    yield add
    admin = BrokerAdmin.from_amqp_uri(production_env["AMQP_URI"])
    for agency in created:
        admin.delete_agency_user(agency)


def dead_letters(amqp_uri: str) -> list[Any]:
    found = []
    with Connection(amqp_uri) as connection:
        queue = dead_letter_queue()(connection.channel())
        while (message := queue.get(no_ack=True)) is not None:
            found.append(message)
    return found


def request_until_the_case_is_known(client: AgencyClient, service: str, command: str, body: dict) -> Any:
    """Events travel asynchronously: a service may not know a just-registered case yet."""

    def attempt() -> Any:
        try:
            return client.request(service, command, body)
        except CommandFailed as failure:
            if failure.error["code"] in ("unknown_case", "case_not_active"):
                return None
            raise

    return eventually(attempt, timeout=20, interval=0.2)


def test_an_agency_added_with_keten_agency_add_shares_and_hears_the_decision_and_the_recipient_the_share(
    production_env, agencies
):
    with running_platform(production_env) as platform:
        utrecht, kredietbank = agencies(UTRECHT), agencies(KREDIETBANK)
        assert utrecht.amqp_url.startswith("amqp://gemeente-utrecht%40")
        assert utrecht.inbox_queue == "keten.inbox.gemeente-utrecht"

        with AgencyClient(utrecht) as client:
            case = register_case_command(str(uuid.uuid4()))
            registered = client.request("case_registration", "register_case", case)
            assert registered.pop("consistency_token").startswith("v1.")
            assert registered == {"case_id": case["case_id"], "status": "registered"}
            activated = client.request(
                "case_registration", "activate_case", activate_command(case["case_id"])
            )
            assert activated.pop("consistency_token").startswith("v1.")
            assert activated == {"case_id": case["case_id"], "status": "active"}

            share = share_command(case["case_id"], content=SHARED, categories=["debts", "income"])
            decision = request_until_the_case_is_known(client, "data_sharing", "request_share", share)
            [decided] = decision["decisions"]
            assert (decided["to_agency"], decided["outcome"]) == (KREDIETBANK, "shared")

            answers = list(client.inbox(timeout=3))
            accepted = [m for m in answers if m.name == "CommandAccepted"]
            assert {m.data["command"] for m in accepted} == {
                "register_case",
                "activate_case",
                "request_share",
            }
            assert not [m for m in answers if m.name == "ShareReceived"], (
                "the sender gets no copy of the content"
            )

        with AgencyClient(kredietbank) as client:
            [received] = eventually(lambda: list(client.inbox(timeout=2)))
        assert received.name == "ShareReceived"
        assert received.data["share_id"] == decided["share_id"]
        assert (received.data["from_agency"], received.data["categories"]) == (UTRECHT, ["debts", "income"])
        assert received.content == {
            "content": SHARED,
            "reference": None,
            "subject": {"role": "citizen"},
            "contact_point": {"function": "casusregisseur schulden"},
        }
        body = json.dumps(received.envelope)
        assert SHARED not in body and CITIZEN["bsn"] not in body and "casusregisseur" not in body, (
            "the content and the contact point's function travel sealed to the recipient"
        )
        assert platform.app("data_sharing").position("case_registration") >= 1


def test_an_agency_asks_for_the_catalogue_on_the_bus_and_reads_the_same_as_over_http(
    production_env, agencies
):
    with running_platform(production_env, ["case_registration", "gateway"]) as platform:
        toeslagen = agencies("dienst-toeslagen")
        with AgencyClient(toeslagen) as client:
            catalogue = client.request("case_registration", "get_catalogue", {})
            [answer] = [m for m in client.inbox(timeout=3) if m.name == "CommandAccepted"]
        over_http = signed_request("GET", platform.base_url, "/api/catalogue", None, toeslagen)

    assert answer.data["command"] == "get_catalogue" and answer.data["result"] == catalogue
    assert over_http.status_code == 200 and over_http.json() == catalogue
    own = next(agency for agency in catalogue["agencies"] if agency["id"] == "dienst-toeslagen")
    assert own["grounds"][0]["provision"]["law"].startswith("Algemene wet inkomensafhankelijke regelingen")
    assert {body["code"] for body in catalogue["complaint_bodies"]} >= {
        "nationale_ombudsman",
        "autoriteit_persoonsgegevens",
    }


def test_a_malformed_command_comes_back_as_a_clear_error_and_lands_in_the_dead_letter_queue(
    production_env, agencies
):
    with running_platform(production_env, ["case_registration", "data_sharing"]):
        utrecht = agencies(UTRECHT)
        with AgencyClient(utrecht) as client:
            share = share_command(str(uuid.uuid4()))
            del share["purpose"]
            with pytest.raises(CommandFailed) as failure:
                client.request("data_sharing", "request_share", share)
            assert failure.value.error == {
                "code": "invalid_field",
                "message": "Missing data for required field.",
                "field": "purpose",
            }
            with pytest.raises(CommandFailed) as unknown:
                client.request("data_sharing", "request_share", share_command(str(uuid.uuid4())))
            assert (unknown.value.error["code"], unknown.value.error["retryable"]) == ("unknown_case", True)
            rejected = [m for m in client.inbox(timeout=2) if m.name == "CommandRejected"]
            assert [m.data["error"]["code"] for m in rejected] == ["invalid_field", "unknown_case"]

        # A command to retry (the case may be on its way) is answered, not dead-lettered.
        dead = eventually(lambda: dead_letters(production_env["AMQP_URI"]))
        assert sorted(m.headers["x-keten-reason-code"] for m in dead) == ["invalid_field"]
        for message in dead:
            assert message.headers["x-keten-service"] == "data_sharing"
            assert (
                message.headers["x-keten-original-routing-key"]
                == "gemeente-utrecht.data_sharing.request_share"
            )
            body = message.body if isinstance(message.body, str) else message.body.decode()
            assert CITIZEN["bsn"] not in body, "a dead command holds no readable BSN"
            assert message.content_type == "application/vnd.keten.sealed+json"


def test_the_broker_refuses_an_agency_another_agencys_routing_key_or_inbox(production_env, agencies):
    with running_platform(production_env, ["data_sharing"]):
        utrecht = agencies(UTRECHT)
        agencies(KREDIETBANK)
        commands = Exchange("keten.commands", type="topic", no_declare=True)

        with Connection(utrecht.amqp_url) as connection, pytest.raises(amqp.exceptions.AccessRefused):
            producer = Producer(connection.channel())
            producer.publish(
                b"{}", exchange=commands, routing_key=f"{KREDIETBANK}.data_sharing.request_share"
            )
            connection.drain_events(timeout=2)  # the broker's refusal closes the channel

        with Connection(utrecht.amqp_url) as connection, pytest.raises(amqp.exceptions.AccessRefused):
            Queue(f"keten.inbox.{KREDIETBANK}", no_declare=True)(connection.channel()).get()

        with Connection(utrecht.amqp_url) as connection, pytest.raises(amqp.exceptions.AccessRefused):
            Queue("mine", exchange=commands, routing_key="#")(connection.channel()).declare()

        with Connection(utrecht.amqp_url) as connection, pytest.raises(amqp.exceptions.AccessRefused):
            Queue("keten.data_sharing.commands", no_declare=True)(connection.channel()).get()


def signed_command(routing_key: str, body: dict[str, Any], key_id: str, private_key: bytes) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    message_id = str(uuid.uuid4())
    return {
        "body": raw,
        "routing_key": routing_key,
        "headers": command_headers(key_id, private_key, routing_key, message_id, raw),
        "message_id": message_id,
        "content_type": "application/json",
    }


def test_a_forged_signature_is_rejected_even_on_a_connection_that_may_speak_for_everyone(
    production_env, agencies
):
    """A shared connection (here the platform's own user) may publish any routing key; the
    signature still decides whose command it is."""
    with running_platform(production_env, ["case_registration"]) as platform:
        agencies(KREDIETBANK)
        utrecht = agencies(UTRECHT)
        forger = KeyPair.generate()
        case = register_case_command(str(uuid.uuid4()))
        key = f"{UTRECHT}.case_registration.register_case"
        attempts = [
            # signed by a key of the forger's own making, under Utrecht's key id
            signed_command(key, case, utrecht.key_id, forger.signing_private_key),
            # Utrecht's genuine signature, replayed as another command
            {
                **signed_command(key, case, utrecht.key_id, b64_decode(utrecht.signing_private_key)),
                "routing_key": f"{UTRECHT}.case_registration.close_case",
            },
        ]
        with Connection(
            production_env["AMQP_URI"], transport_options={"confirm_publish": True}
        ) as connection:
            producer = Producer(connection.channel())
            for attempt in attempts:
                producer.publish(
                    exchange=Exchange("keten.commands", type="topic", no_declare=True), **attempt
                )

        with AgencyClient(utrecht) as client:
            rejected = eventually(lambda: list(client.inbox(timeout=2)))
        assert [m.data["error"]["code"] for m in rejected] == ["bad_signature", "bad_signature"]
        assert platform.app("case_registration").recorder.max_notification_id() in (None, 0)


def b64_decode(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def test_a_removed_agency_can_no_longer_connect_nor_sign_and_rotation_keeps_commands_in_flight(
    production_env, agencies
):
    settings = Settings.from_env(production_env)
    with running_platform(production_env, ["case_registration"]):
        old = agencies(UTRECHT)
        rotated = keten(production_env, "agency", "rotate", UTRECHT)
        assert rotated.returncode == 0, rotated.stderr
        new = Credentials.from_dict(json.loads(rotated.stdout))
        assert new.key_id != old.key_id

        with pytest.raises(Exception):  # noqa: B017 - the old password is gone at once
            Connection(old.amqp_url).ensure_connection(max_retries=1)
        # ...but a command signed with the old key within the overlap still counts.
        in_flight = Credentials.from_dict(
            {**new.__dict__, "key_id": old.key_id, "signing_private_key": old.signing_private_key}
        )
        with AgencyClient(in_flight) as client:
            case = register_case_command(str(uuid.uuid4()))
            assert client.request("case_registration", "register_case", case)["status"] == "registered"

        removed = keten(production_env, "agency", "remove", UTRECHT)
        assert removed.returncode == 0, removed.stderr
        assert "revoked" in removed.stdout
        with pytest.raises(Exception):  # noqa: B017 - the user is gone
            Connection(new.amqp_url).ensure_connection(max_retries=1)
        listing = keten(production_env, "agency", "list").stdout
        assert listing.count("revoked") == 2
        del settings
