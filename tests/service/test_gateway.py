"""The gateway over the in-process broker, with hand-written stand-ins for the services."""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests
from nameko.rpc import rpc

from keten.platform import nameko_config
from keten_client import KeyPair, signed_http_headers
from keten_client.protocol import b64
from services.gateway.service import GatewayService
from services.gateway.sessions import SessionSigner
from shared.config import Settings
from shared.errors import NotFound
from tests.support import agency_credentials, signed_post


class CaseRegistrationStandIn:
    """Refuses every registration the way the real service refuses an unknown table."""

    name = "case_registration"
    received: list = []

    @rpc
    def register_case(self, command):
        self.received.append(command)
        raise NotFound("unknown_table", "unknown consultation table", "table")

    @rpc
    def health(self):
        return {"service": self.name, "ok": True}


@pytest.fixture
def gateway(runner_factory, embedded_env):
    env = {**embedded_env, "KETEN_RPC_TIMEOUT": "0.5"}
    settings = Settings.from_env(env)
    runner = runner_factory(nameko_config(settings, **env), GatewayService, CaseRegistrationStandIn)
    runner.start()
    CaseRegistrationStandIn.received = []
    return f"http://{settings.gateway_address}", settings


def test_a_refusal_comes_back_as_its_http_status_with_a_json_error(gateway):
    base_url, settings = gateway
    utrecht = agency_credentials(settings, "gemeente-utrecht")
    response = signed_post(base_url, "/api/cases", {"table": "nowhere"}, utrecht)
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "unknown_table", "message": "unknown consultation table", "field": "table"}
    }
    assert CaseRegistrationStandIn.received == [{"table": "nowhere", "agency": "gemeente-utrecht"}]


def test_a_signed_body_that_is_not_json_is_a_400(gateway):
    base_url, settings = gateway
    utrecht = agency_credentials(settings, "gemeente-utrecht")
    headers = signed_http_headers(utrecht, "POST", "/api/cases", b"{not json")
    response = requests.post(f"{base_url}/api/cases", data=b"{not json", headers=headers, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_json"
    assert CaseRegistrationStandIn.received == []


def test_an_unsigned_agency_request_is_refused_before_any_service_sees_it(gateway):
    base_url, _ = gateway
    response = requests.post(f"{base_url}/api/cases", json={"table": "nowhere"}, timeout=5)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "signature_missing")
    assert CaseRegistrationStandIn.received == []


def test_a_request_signed_with_a_key_of_its_own_making_is_refused(gateway):
    base_url, settings = gateway
    real = agency_credentials(settings, "gemeente-utrecht")
    forger = KeyPair.generate()
    forged = dataclasses.replace(real, signing_private_key=b64(forger.signing_private_key))
    response = signed_post(base_url, "/api/cases", {"table": "nowhere"}, forged)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "bad_signature")
    assert CaseRegistrationStandIn.received == []


def test_a_signed_body_cannot_be_replayed_to_another_path(gateway):
    base_url, settings = gateway
    utrecht = agency_credentials(settings, "gemeente-utrecht")
    body = json.dumps({"outcome": "help_arranged"}).encode()
    headers = signed_http_headers(
        utrecht, "POST", "/api/cases/11111111-1111-1111-1111-111111111111/close", body
    )
    response = requests.post(
        f"{base_url}/api/cases/22222222-2222-2222-2222-222222222222/close",
        data=body,
        headers=headers,
        timeout=5,
    )
    assert (response.status_code, response.json()["error"]["code"]) == (403, "bad_signature")


def test_an_agency_cannot_sign_a_command_in_another_agencys_name(gateway):
    base_url, settings = gateway
    mitros = agency_credentials(settings, "woningcorporatie-mitros")
    response = signed_post(base_url, "/api/cases", {"table": "nowhere", "agency": "gemeente-utrecht"}, mitros)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "agency_mismatch")
    assert CaseRegistrationStandIn.received == []


def test_health_is_503_and_names_the_services_that_do_not_answer(gateway):
    base_url, _ = gateway
    response = requests.get(f"{base_url}/health", timeout=10)
    assert response.status_code == 503
    services = response.json()["services"]
    assert services["case_registration"]["ok"] is True
    for missing in ("consent", "data_sharing", "notification", "retention"):
        assert services[missing] == {"ok": False, "error": "service_unavailable"}


def test_the_overview_needs_a_valid_unexpired_session(gateway):
    base_url, settings = gateway
    overview = f"{base_url}/api/citizen/overview"
    assert requests.get(overview, timeout=5).json()["error"]["code"] == "not_logged_in"
    forged = SessionSigner(b"x" * 32).issue("a" * 32)
    assert requests.get(overview, headers={"Authorization": f"Bearer {forged}"}, timeout=5).status_code == 403
    expired = SessionSigner(settings.master_key).issue("a" * 32, now=0)
    response = requests.get(overview, headers={"Authorization": f"Bearer {expired}"}, timeout=5)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "session_expired")


def test_logging_in_with_an_invalid_bsn_is_refused_without_repeating_it(gateway):
    base_url, _ = gateway
    response = requests.post(f"{base_url}/api/citizen/session", json={"bsn": "123456789"}, timeout=5)
    assert response.status_code == 400
    assert "123456789" not in response.text
