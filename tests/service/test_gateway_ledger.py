"""``GET /api/agencies/{agency}/ledger``: signed like every agency request; the signer and the
agency in the path go to data_sharing, which refuses another agency's ledger."""

from __future__ import annotations

import pytest
import requests
from nameko.rpc import rpc

from keten.platform import nameko_config
from keten_client import signed_http_headers
from services.gateway.service import GatewayService
from shared.config import Settings
from shared.errors import NotAuthorised
from tests.support import agency_credentials


class DataSharingStandIn:
    """Answers an empty ledger to its own agency, 403 to another; records each command."""

    name = "data_sharing"
    received: list = []

    @rpc(expected_exceptions=NotAuthorised)
    def get_ledger(self, command):
        self.received.append(command)
        if command["of_agency"] != command["agency"]:
            raise NotAuthorised("not_your_ledger", "an agency reads its own ledger only", "of_agency")
        return {"agency": command["agency"], "since": None, "until": None, "entries": []}


@pytest.fixture
def gateway(runner_factory, embedded_env):
    settings = Settings.from_env(embedded_env)
    runner = runner_factory(nameko_config(settings, **embedded_env), GatewayService, DataSharingStandIn)
    runner.start()
    DataSharingStandIn.received = []
    return f"http://{settings.gateway_address}", agency_credentials(settings, "gemeente-utrecht")


def get(base_url, credentials, path):
    return requests.get(
        base_url + path, headers=signed_http_headers(credentials, "GET", path, b""), timeout=5
    )


def test_an_agency_reads_its_own_ledger_with_its_query(gateway):
    base_url, utrecht = gateway
    answer = get(base_url, utrecht, "/api/agencies/gemeente-utrecht/ledger?side=provided&since=2026-01-01")
    assert answer.status_code == 200, answer.text
    assert answer.json()["entries"] == []
    [command] = DataSharingStandIn.received
    assert command == {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "of_agency": "gemeente-utrecht",
        "side": "provided",
        "since": "2026-01-01",
    }


def test_another_agencys_ledger_is_403(gateway):
    base_url, utrecht = gateway
    answer = get(base_url, utrecht, "/api/agencies/kredietbank-utrecht/ledger")
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "not_your_ledger")


def test_an_unsigned_ledger_request_is_refused(gateway):
    base_url, _ = gateway
    answer = requests.get(base_url + "/api/agencies/gemeente-utrecht/ledger", timeout=5)
    assert answer.status_code == 403
    assert DataSharingStandIn.received == []
