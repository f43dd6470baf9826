"""Operators may provision the broker from deploy/rabbitmq/definitions.json: the services then
start on it without a conflict, and what they declare is what the file says."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import requests

from keten import contract
from tests.conftest import RABBIT_AUTH
from tests.support import running_platform

pytestmark = pytest.mark.integration


def test_services_start_on_a_broker_provisioned_from_the_definitions_file(rabbit, production_env):
    definitions = json.loads(contract.DOCUMENTS["rabbitmq"].read_text())
    definitions.pop("_comment")
    response = requests.post(
        f"{rabbit.api}/definitions/{quote(rabbit.vhost, safe='')}",
        json=definitions,
        auth=RABBIT_AUTH,
        timeout=30,
    )
    assert response.status_code in (200, 201, 204), response.text

    with running_platform(production_env) as platform:
        health = requests.get(f"{platform.base_url}/health", timeout=10)
        assert health.status_code == 200, health.text

    # nameko's own RPC queues and exchange are not part of the published topology.
    declared = {
        q["name"]: q
        for q in rabbit.get(f"/queues/{quote(rabbit.vhost, safe='')}")
        if q["name"].startswith("keten.")
    }
    assert set(declared) == {q["name"] for q in definitions["queues"]}, "the services declared nothing else"
    for queue in definitions["queues"]:
        assert declared[queue["name"]]["arguments"] == queue["arguments"], queue["name"]
    bindings = {
        (b["source"], b["destination"], b["routing_key"])
        for b in rabbit.get(f"/bindings/{quote(rabbit.vhost, safe='')}")
        if b["source"].startswith("keten.")
    }
    assert bindings == {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}
