"""The gateway's edges: a body too large is refused before it is read, an unknown route answers
JSON, every response carries the security headers, and a database that cannot be reached is a
503 with Retry-After, not a 500."""

from __future__ import annotations

import socket
import threading

import pytest
import requests
from eventsourcing.persistence import OperationalError
from nameko.rpc import rpc

from keten.platform import nameko_config
from services.gateway.service import GatewayService
from shared.config import Settings
from tests.support import agency_credentials, signed_request

HUNDRED_MB = 100 * 1024 * 1024


class ConsentStandIn:
    """A consent service whose database went away: every call fails as the store fails."""

    name = "consent"

    @rpc
    def give_consent(self, command):
        raise OperationalError("OperationalError (SQLSTATE 57P01)")


def _gateway(runner_factory, env):
    settings = Settings.from_env(env)
    runner = runner_factory(nameko_config(settings, **env), GatewayService, ConsentStandIn)
    runner.start()
    return f"http://{settings.gateway_address}", settings


@pytest.fixture
def gateway(runner_factory, embedded_env):
    return _gateway(runner_factory, embedded_env)


def test_a_100_mb_body_is_refused_with_413_before_it_is_read(gateway):
    _, settings = gateway
    host, port = settings.gateway_address.split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /api/consents HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % HUNDRED_MB
        )

        def send_body() -> None:
            nonlocal sent
            block = b"x" * 65536
            try:
                while sent < HUNDRED_MB:
                    sent += connection.send(block)
            except OSError:
                pass  # the gateway closed the connection: what we want

        sender = threading.Thread(target=send_body)
        sender.start()
        answer = connection.recv(65536)
        sender.join(timeout=10)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413")
    assert b'"request_too_large"' in rest and b"application/json" in rest
    assert sent < HUNDRED_MB / 4, f"the gateway read on: {sent} bytes sent"


def test_a_100_mb_body_from_an_http_client_gets_its_413(gateway):
    base_url, _ = gateway
    response = requests.post(f"{base_url}/api/consents", data=b"x" * HUNDRED_MB, timeout=30)
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")


def test_a_chunked_body_is_read_no_further_than_the_limit(gateway):
    base_url, _ = gateway
    produced = 0

    def hundred_megabytes():
        nonlocal produced
        for _ in range(100):
            produced += 1024 * 1024
            yield b"x" * (1024 * 1024)

    response = requests.post(f"{base_url}/api/consents", data=hundred_megabytes(), timeout=30)
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
    assert produced < HUNDRED_MB / 4, f"the gateway read on: {produced} bytes produced"


def test_the_limit_is_a_setting_and_a_body_within_it_goes_on(runner_factory, embedded_env):
    base_url, _ = _gateway(runner_factory, {**embedded_env, "KETEN_MAX_REQUEST_BYTES": "1000"})
    over = requests.post(f"{base_url}/api/consents", data=b"{" + b" " * 1000 + b"}", timeout=5)
    within = requests.post(f"{base_url}/api/consents", data=b"{" + b" " * 900 + b"}", timeout=5)
    assert over.status_code == 413
    assert (within.status_code, within.json()["error"]["code"]) == (403, "signature_missing")


def test_an_unknown_route_answers_json(gateway):
    base_url, _ = gateway
    missing = requests.get(f"{base_url}/api/nothing-here", timeout=5)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/json"
    assert missing.json()["error"]["code"] == "no_such_route"
    wrong_method = requests.delete(f"{base_url}/api/consents", timeout=5)
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")
    assert wrong_method.headers["Allow"] == "POST"


def test_every_response_carries_the_security_headers_and_hsts_only_over_tls(gateway):
    base_url, _ = gateway
    for response in (
        requests.get(f"{base_url}/inzage", timeout=5),
        requests.get(f"{base_url}/api/nothing-here", timeout=5),
        requests.get(f"{base_url}/metrics", timeout=5),
        requests.post(f"{base_url}/api/consents", json={}, timeout=5),
        requests.get(f"{base_url}/inzage", headers={"X-Forwarded-Proto": "https"}, timeout=5),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in response.headers, "no proxy is trusted"


def test_behind_a_trusted_proxy_its_forwarded_scheme_counts(runner_factory, embedded_env):
    base_url, _ = _gateway(runner_factory, {**embedded_env, "KETEN_TRUSTED_PROXIES": "1"})
    over_tls = requests.get(f"{base_url}/inzage", headers={"X-Forwarded-Proto": "https"}, timeout=5)
    plain = requests.get(f"{base_url}/inzage", timeout=5)
    assert over_tls.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in plain.headers


def test_a_service_whose_database_is_unreachable_makes_a_503_with_retry_after(gateway):
    base_url, settings = gateway
    utrecht = agency_credentials(settings, "gemeente-utrecht")
    response = signed_request("POST", base_url, "/api/consents", {"schema_version": 1}, utrecht)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0
