"""What the gateway passes on to the services it calls: every request's correlation id (so an
operator can follow it through every log, and back to the caller) and an agency's W3C trace
context (marked as the caller's); and the register of processing activities the Logboek
Dataverwerkingen records point at."""

from __future__ import annotations

import uuid

import pytest
import requests
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from keten.platform import nameko_config
from services.gateway.service import GatewayService
from shared.config import Settings
from tests.support import agency_credentials, signed_request

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_KEYS = ("traceparent", "tracestate", "trace_foreign")


class ContextSeen(DependencyProvider):
    """Gives the worker the context data nameko passed it."""

    def get_dependency(self, worker_ctx):
        return dict(worker_ctx.data)


class DataSharingStandIn:
    """Records the context data each share request arrived with."""

    name = "data_sharing"
    context = ContextSeen()
    seen: list = []

    @rpc
    def request_share(self, command):
        self.seen.append(self.context)
        return {"request_id": command.get("request_id"), "decisions": []}


def correlation_ids():
    return [data.get("correlation_id") for data in DataSharingStandIn.seen]


def trace_contexts():
    return [{key: data.get(key) for key in TRACE_KEYS} for data in DataSharingStandIn.seen]


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
    assert correlation_ids() == [request_id]


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
    assert correlation_ids() == ["agency-trace-42", made.headers["X-Correlation-ID"]]


def test_errors_carry_the_correlation_id_too(gateway, utrecht):
    response = signed_request("POST", gateway, "/api/shares", b"{not json", utrecht)
    assert response.status_code == 400
    assert len(response.headers["X-Correlation-ID"]) >= 8


def test_an_agencys_traceparent_reaches_the_service_it_calls_marked_as_the_callers(gateway, utrecht):
    headers = {"traceparent": TRACEPARENT, "tracestate": "agency=1"}
    assert signed_request("POST", gateway, "/api/shares", {}, utrecht, headers=headers).status_code == 200
    assert trace_contexts() == [{"traceparent": TRACEPARENT, "tracestate": "agency=1", "trace_foreign": "1"}]


def test_a_malformed_traceparent_is_not_passed_on_and_the_request_is_served(gateway, utrecht):
    headers = {"traceparent": "00-zz-not-a-trace"}
    assert signed_request("POST", gateway, "/api/shares", {}, utrecht, headers=headers).status_code == 200
    assert signed_request("POST", gateway, "/api/shares", {}, utrecht).status_code == 200
    nothing = {"traceparent": None, "tracestate": None, "trace_foreign": None}
    assert trace_contexts() == [nothing, nothing]


def test_the_register_of_processing_activities_is_public_and_each_version_resolves(gateway):
    register = requests.get(f"{gateway}/api/ldv/processing-activities", timeout=10)
    assert register.status_code == 200
    activities = register.json()["activities"]
    share = next(a for a in activities if a["key"] == "share.debt_assistance.gemeente-utrecht")
    one = requests.get(
        share["id"].replace(register.json()["register"], f"{gateway}/api/ldv/processing-activities"),
        timeout=10,
    )
    assert one.status_code == 200 and one.json() == share
    unknown = requests.get(
        f"{gateway}/api/ldv/processing-activities/{share['key']}/0000000000000000", timeout=10
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_processing_activity")
