"""Free text a professional types where a function belongs (the case's contact point) is sealed
wherever it goes, on this machine's real RabbitMQ and PostgreSQL: the citizen and the recipient
of a share read it, and after the purge no table of any service and no queue holds it."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import requests

from keten import demo
from keten.purge import run_purge
from keten_client import AgencyClient, CommandFailed
from shared.topology import inbox_queue_name
from shared.wire import open_sealed, unb64
from tests.conftest import RABBIT_AUTH
from tests.support import eventually, pg_dump, running_platform

pytestmark = pytest.mark.integration

THREE_YEARS_ON = datetime.now(UTC) + timedelta(days=3 * 366)
#: How long to wait for what travels asynchronously, on a machine shared with other test runs.
WAIT = 60.0


def queued_bodies(rabbit: Any) -> dict[str, list[str]]:
    """Every message in every queue of the test's vhost that can be read without consuming it
    (inboxes, dead letters, the unroutable), by queue, left in place. The services' own event
    queues (one active consumer each, which a peek may not bypass) are drained by the services."""
    vhost = quote(rabbit.vhost, safe="")
    found = {}
    for queue in rabbit.get(f"/queues/{vhost}"):
        if queue.get("arguments", {}).get("x-single-active-consumer"):
            continue
        response = requests.post(
            f"{rabbit.api}/queues/{vhost}/{quote(queue['name'], safe='')}/get",
            json={"count": 10_000, "ackmode": "ack_requeue_true", "encoding": "auto"},
            auth=RABBIT_AUTH,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        found[queue["name"]] = [message["payload"] for message in response.json()]
    return found


def overview_case(base_url: str, case_id: str) -> dict[str, Any]:
    token = requests.post(
        f"{base_url}/api/citizen/session", json={"bsn": demo.CITIZEN["bsn"]}, timeout=5
    ).json()["token"]
    overview = requests.get(
        f"{base_url}/api/citizen/overview", headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).json()
    [case] = [c for c in overview["cases"] if c["case_id"] == case_id]
    return case  # type: ignore[no-any-return]


def test_a_name_typed_as_the_contact_points_function_is_readable_until_the_purge_and_nowhere_after(
    production_env, postgres_dsn, pg_schema, rabbit, monkeypatch
):
    marker = f"Sanne de Vries {uuid.uuid4().hex[:10]}"  # a professional's name, where a function belongs
    registered = demo.register_case_command

    def with_a_name_as_function(case_id: str, bsn: str = demo.CITIZEN["bsn"]) -> dict[str, Any]:
        command = registered(case_id, bsn)
        command["contact_point"]["function"] = marker
        return command

    monkeypatch.setattr(demo, "register_case_command", with_a_name_as_function)
    with running_platform(production_env) as platform:
        kredietbank = platform.credentials("kredietbank-utrecht")  # the share's recipient, with a key
        result = demo.run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())

        # The citizen reads the function in the overview, the recipient inside what was sealed to it.
        case = eventually(
            lambda: (c := overview_case(platform.base_url, result.case_id))["shares"] and c, timeout=WAIT
        )
        assert case["contact_point"]["function"] == marker
        assert case["shares"][0]["contact_point"]["function"] == marker
        inbox = inbox_queue_name("kredietbank-utrecht")
        told = eventually(lambda: queued_bodies(rabbit)[inbox], timeout=WAIT)
        # At least once: a copy has the same message id.
        assert {json.loads(body)["message"] for body in told} == {"ShareReceived"}
        assert len({json.loads(body)["message_id"] for body in told}) == 1
        data = json.loads(told[0])["data"]
        assert data["contact_point"] == {"agency": "gemeente-utrecht", "function": None}
        opened = open_sealed(unb64(kredietbank.encryption_private_key), data["sealed_content"])
        assert opened["contact_point"] == {"function": marker}
        assert marker not in pg_dump(postgres_dsn, pg_schema), "kept sealed, never in plain text"

        # A command with the name in it that is rejected goes to the dead letters, sealed.
        rejected = demo.register_case_command(str(uuid.uuid4()))
        rejected["participation"] = "unknown"
        utrecht = replace(platform.credentials(), amqp_url=rabbit.amqp_uri)
        with AgencyClient(utrecht) as client, pytest.raises(CommandFailed) as failed:
            client.request("case_registration", "register_case", rejected, timeout=WAIT)
        assert (failed.value.error["code"], failed.value.error["field"]) == ("invalid_field", "participation")

        assert run_purge(False, THREE_YEARS_ON, progress=False, settings=platform.settings) == 0
        case = eventually(
            lambda: (
                (c := overview_case(platform.base_url, result.case_id))["purged"]
                and len(c["purged"]) == 2
                and c
            ),
            timeout=WAIT,
        )
        assert case["contact_point"]["function"] is None
        assert case["shares"][0]["contact_point"]["function"] is None
        for service in ("case_registration", "data_sharing"):
            app = platform.app(service)
            assert app.vault.keys.live_keys(uuid.UUID(result.case_id)) == []

    dump = pg_dump(postgres_dsn, pg_schema)
    assert "case_registration" in dump and "notification_overview_cases" in dump
    assert marker not in dump
    queued = queued_bodies(rabbit)
    assert inbox in queued and queued["keten.dead-letter"], sorted(queued)
    for queue, bodies in queued.items():
        assert not [body for body in bodies if marker in body], f"{queue} holds the function in plain text"
