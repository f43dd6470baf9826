"""The operations endpoints of a process, as Kubernetes and Prometheus see them."""

from __future__ import annotations

import pytest
import requests

from shared import metrics, ops
from tests.conftest import free_port


class Checks:
    """A service's checks, set by the test: alive or not, ready or not."""

    def __init__(self) -> None:
        self.alive = True
        self.report: dict = {"ok": True, "broker": "ok", "store": "ok"}

    def live(self) -> bool:
        return self.alive

    def ready(self) -> dict:
        if isinstance(self.report, Exception):
            raise self.report
        return self.report


@pytest.fixture
def server():
    port = free_port()
    consent, retention = Checks(), Checks()
    ops.attach(port, "consent", consent.live, consent.ready)
    ops.attach(port, "retention", retention.live, retention.ready)
    yield f"http://127.0.0.1:{port}", consent, retention
    ops.detach(port, "consent")
    ops.detach(port, "retention")


def test_a_process_whose_services_are_ready_says_so(server):
    url, _, _ = server
    response = requests.get(f"{url}/readyz", timeout=5)
    assert response.status_code == 200
    assert sorted(response.json()["services"]) == ["consent", "retention"]
    assert requests.get(f"{url}/livez", timeout=5).json() == {"alive": True, "dead": []}


def test_one_service_not_ready_makes_the_process_not_ready_and_names_what_is_down(server):
    url, consent, retention = server
    consent.report = {"ok": False, "broker": "ConnectionRefusedError", "store": "ok"}
    retention.report = RuntimeError("boom")
    response = requests.get(f"{url}/readyz", timeout=5)
    assert response.status_code == 503
    services = response.json()["services"]
    assert services["consent"]["broker"] == "ConnectionRefusedError"
    assert services["retention"] == {"ok": False, "error": "RuntimeError"}
    assert requests.get(f"{url}/livez", timeout=5).status_code == 200, "an outage is no reason to restart"


def test_a_dead_service_makes_the_process_not_alive(server):
    url, consent, _ = server
    consent.alive = False
    response = requests.get(f"{url}/livez", timeout=5)
    assert response.status_code == 503
    assert response.json() == {"alive": False, "dead": ["consent"]}


def test_metrics_are_served_in_prometheus_text_format(server):
    url, _, _ = server
    response = requests.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert f"# TYPE {metrics.messages_handled._name}_total counter" in response.text


def test_other_paths_and_methods_are_refused(server):
    url, _, _ = server
    assert requests.get(f"{url}/admin", timeout=5).status_code == 404
    assert requests.post(f"{url}/readyz", timeout=5).status_code == 405


def test_the_port_closes_with_the_last_service_of_the_process():
    port = free_port()
    checks = Checks()
    ops.attach(port, "gateway", checks.live, checks.ready)
    assert requests.get(f"http://127.0.0.1:{port}/livez", timeout=5).status_code == 200
    ops.detach(port, "gateway")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/livez", timeout=2)
