"""Every gateway request carries a correlation id into the services it calls and back to the
caller, so an operator can follow it through every log."""

from __future__ import annotations

import uuid

import pytest
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from keten.platform import nameko_config
from services.gateway.service import GatewayService
from shared.config import Settings
from tests.support import agency_credentials, signed_request


class ContextSeen(DependencyProvider):
    """Gives the worker the correlation id nameko passed it as context data."""

    def get_dependency(self, worker_ctx):
        return worker_ctx.data.get("correlation_id")


class DataSharingStandIn:
    """Records the correlation id each share request arrived with."""

    name = "data_sharing"
    correlation_id = ContextSeen()
    seen: list = []

    @rpc
    def request_share(self, command):
        self.seen.append(self.correlation_id)
        return {"request_id": command.get("request_id"), "decisions": []}


@pytest.fixture
def gateway(runner_factory, embedded_env):
    settings = Settings.from_env(embedded_env)
    runner = runner_factory(nameko_config(settings, **embedded_env), GatewayService, DataSharingStandIn)
    runner.start()
    DataSharingStandIn.seen = []
    return f"http://{settings.gateway_address}"


@pytest.fixture
def utrecht(embedded_env):
    return agency_credentials(Settings.from_env(embedded_env), "gemeente-utrecht")


def test_a_share_request_is_followed_by_its_own_request_id(gateway, utrecht):
    request_id = str(uuid.uuid4())
    response = signed_request("POST", gateway, "/api/shares", {"request_id": request_id}, utrecht)
    assert response.status_code == 200
    assert response.headers["X-Correlation-ID"] == request_id
    assert DataSharingStandIn.seen == [request_id]


def test_a_callers_correlation_id_is_kept_and_a_missing_one_is_made(gateway, utrecht):
    given = signed_request(
        "POST",
        gateway,
        "/api/shares",
        {"no": "request id"},
        utrecht,
        headers={"X-Correlation-ID": "agency-trace-42"},
    )
    made = signed_request(
        "POST", gateway, "/api/shares", {}, utrecht, headers={"X-Correlation-ID": "bad id; drop"}
    )
    assert given.headers["X-Correlation-ID"] == "agency-trace-42"
    assert made.headers["X-Correlation-ID"] not in ("", "bad id; drop")
    assert DataSharingStandIn.seen == ["agency-trace-42", made.headers["X-Correlation-ID"]]


def test_errors_carry_the_correlation_id_too(gateway, utrecht):
    response = signed_request("POST", gateway, "/api/shares", b"{not json", utrecht)
    assert response.status_code == 400
    assert len(response.headers["X-Correlation-ID"]) >= 8
