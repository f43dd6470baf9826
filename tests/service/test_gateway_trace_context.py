"""The gateway passes an agency's W3C trace context into the services it calls (nameko context
data, marked as the caller's) and serves the register of processing activities the
Logboek Dataverwerkingen records point at."""

from __future__ import annotations

import pytest
import requests
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from keten.platform import nameko_config
from services.gateway.service import GatewayService
from shared.config import Settings
from tests.support import agency_credentials, signed_request

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class TraceSeen(DependencyProvider):
    """Gives the worker the trace context nameko passed it as context data."""

    def get_dependency(self, worker_ctx):
        return {key: worker_ctx.data.get(key) for key in ("traceparent", "tracestate", "trace_foreign")}


class DataSharingStandIn:
    name = "data_sharing"
    trace = TraceSeen()
    seen: list = []

    @rpc
    def request_share(self, command):
        self.seen.append(self.trace)
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


def test_an_agencys_traceparent_reaches_the_service_it_calls_marked_as_the_callers(gateway, utrecht):
    headers = {"traceparent": TRACEPARENT, "tracestate": "agency=1"}
    assert signed_request("POST", gateway, "/api/shares", {}, utrecht, headers=headers).status_code == 200
    assert DataSharingStandIn.seen == [
        {"traceparent": TRACEPARENT, "tracestate": "agency=1", "trace_foreign": "1"}
    ]


def test_a_malformed_traceparent_is_not_passed_on_and_the_request_is_served(gateway, utrecht):
    headers = {"traceparent": "00-zz-not-a-trace"}
    assert signed_request("POST", gateway, "/api/shares", {}, utrecht, headers=headers).status_code == 200
    assert signed_request("POST", gateway, "/api/shares", {}, utrecht).status_code == 200
    nothing = {"traceparent": None, "tracestate": None, "trace_foreign": None}
    assert DataSharingStandIn.seen == [nothing, nothing]


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
