"""Every gateway request carries a correlation id into the services it calls and back to the
caller, so an operator can follow it through every log."""

from __future__ import annotations

import uuid

import pytest
import requests
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from services.gateway.service import GatewayService
from services.platform import nameko_config
from shared.config import Settings


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


def test_a_share_request_is_followed_by_its_own_request_id(gateway):
    request_id = str(uuid.uuid4())
    response = requests.post(f"{gateway}/api/shares", json={"request_id": request_id}, timeout=5)
    assert response.status_code == 200
    assert response.headers["X-Correlation-ID"] == request_id
    assert DataSharingStandIn.seen == [request_id]


def test_a_callers_correlation_id_is_kept_and_a_missing_one_is_made(gateway):
    given = requests.post(
        f"{gateway}/api/shares",
        json={"no": "request id"},
        headers={"X-Correlation-ID": "agency-trace-42"},
        timeout=5,
    )
    made = requests.post(
        f"{gateway}/api/shares", json={}, headers={"X-Correlation-ID": "bad id; drop"}, timeout=5
    )
    assert given.headers["X-Correlation-ID"] == "agency-trace-42"
    assert made.headers["X-Correlation-ID"] not in ("", "bad id; drop")
    assert DataSharingStandIn.seen == ["agency-trace-42", made.headers["X-Correlation-ID"]]


def test_errors_carry_the_correlation_id_too(gateway):
    response = requests.post(f"{gateway}/api/shares", data=b"{not json", timeout=5)
    assert response.status_code == 400
    assert len(response.headers["X-Correlation-ID"]) >= 8
