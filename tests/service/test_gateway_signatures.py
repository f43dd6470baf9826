"""Agencies' HTTP requests cannot be replayed: the gateway takes each signed request once,
within its window, and the retired X-Keten-Signature scheme not at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from nameko.rpc import rpc

from keten.platform import nameko_config
from keten_client import signed_http_headers
from keten_client.protocol import sign, unb64
from services.gateway.service import GatewayService
from shared.config import Settings
from shared.http_signatures import sign_request
from tests.support import agency_credentials

CASE_ID = "5c2e0f0e-8f4b-4d0b-9a54-3f7c4c2b1a10"


class CaseRegistrationStandIn:
    """Closes any case, and records each command it was given."""

    name = "case_registration"
    received: list = []

    @rpc
    def close_case(self, command):
        self.received.append(command)
        return {"case_id": command["case_id"], "status": "closed"}


@pytest.fixture
def gateway(runner_factory, embedded_env):
    settings = Settings.from_env(embedded_env)
    runner = runner_factory(nameko_config(settings, **embedded_env), GatewayService, CaseRegistrationStandIn)
    runner.start()
    CaseRegistrationStandIn.received = []
    return f"http://{settings.gateway_address}", agency_credentials(settings, "gemeente-utrecht")


PATH = f"/api/cases/{CASE_ID}/close"
BODY = json.dumps({"schema_version": 1, "outcome": "help_arranged"}).encode()


def test_a_replayed_request_same_headers_and_body_is_refused(gateway):
    base_url, utrecht = gateway
    headers = signed_http_headers(utrecht, "POST", PATH, BODY)
    first = requests.post(base_url + PATH, data=BODY, headers=headers, timeout=5)
    again = requests.post(base_url + PATH, data=BODY, headers=headers, timeout=5)
    assert first.status_code == 200
    assert (again.status_code, again.json()["error"]["code"]) == (403, "request_replayed")
    assert len(CaseRegistrationStandIn.received) == 1, "the service saw the command once"


def test_the_same_command_signed_anew_is_a_new_request(gateway):
    base_url, utrecht = gateway
    for _ in range(2):
        headers = signed_http_headers(utrecht, "POST", PATH, BODY)
        assert requests.post(base_url + PATH, data=BODY, headers=headers, timeout=5).status_code == 200
    assert len(CaseRegistrationStandIn.received) == 2


def test_a_request_older_than_the_window_is_refused(gateway):
    base_url, utrecht = gateway
    signed_long_ago = datetime.now(UTC) - timedelta(seconds=120)
    headers = sign_request(
        unb64(utrecht.signing_private_key), utrecht.key_id, "POST", PATH, BODY, created=signed_long_ago
    )
    response = requests.post(base_url + PATH, data=BODY, headers=headers, timeout=5)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "signature_expired")
    assert CaseRegistrationStandIn.received == []


def test_a_changed_body_under_a_valid_signature_is_refused(gateway):
    base_url, utrecht = gateway
    headers = signed_http_headers(utrecht, "POST", PATH, BODY)
    changed = BODY.replace(b"help_arranged", b"no_help_needed")
    response = requests.post(base_url + PATH, data=changed, headers=headers, timeout=5)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "bad_content_digest")
    assert CaseRegistrationStandIn.received == []


def test_the_retired_x_keten_signature_is_refused_with_a_pointer_to_the_new_scheme(gateway):
    base_url, utrecht = gateway
    legacy = {
        "X-Keten-Key-Id": utrecht.key_id,
        "X-Keten-Signature": sign(unb64(utrecht.signing_private_key), f"POST {PATH}", BODY),
    }
    response = requests.post(base_url + PATH, data=BODY, headers=legacy, timeout=5)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "signature_scheme_retired")
    assert "RFC 9421" in response.json()["error"]["message"]
    assert CaseRegistrationStandIn.received == []
