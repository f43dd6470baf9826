"""What an operator observes of the production layout: one process per service on the real
RabbitMQ and PostgreSQL, each with its operations endpoints, metrics and JSON logs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from keten.demo import CITIZEN, SHARED_SENTENCE, run_demo
from keten.platform import SERVICES, build_runner
from shared import metrics
from shared.config import Settings
from tests.conftest import free_port
from tests.support import ServiceProcess, agency_credentials, eventually, keten, running_services

pytestmark = pytest.mark.integration

CITIZEN_VALUES = (
    CITIZEN["bsn"],
    CITIZEN["name"],
    CITIZEN["email"],
    CITIZEN["postal_address"],
    SHARED_SENTENCE,
    "Sanne",
    "Lindelaan",
)
SAFE_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:+-]*$")


@pytest.fixture
def service_processes(production_env, tmp_path) -> Iterator[dict[str, ServiceProcess]]:
    processes = {name: ServiceProcess(name, production_env, tmp_path) for name in SERVICES}
    with running_services(production_env, processes) as exit_codes:
        yield processes
    failed = {name: processes[name].log_tail() for name, code in exit_codes.items() if code != 0}
    assert not failed, f"every service stops cleanly on SIGTERM; these did not: {failed}"


def test_every_service_process_is_ready_and_shows_its_metrics_after_the_demo(
    production_env, service_processes
):
    def all_ready() -> bool:
        not_ready.clear()
        for name, process in service_processes.items():
            try:
                response = process.get("/readyz")
                if response.status_code != 200:
                    not_ready[name] = response.text
            except requests.RequestException as error:
                not_ready[name] = type(error).__name__
        return not not_ready

    not_ready: dict[str, str] = {}
    try:
        eventually(all_ready, timeout=90, interval=0.5)
    except AssertionError:
        logs = {name: service_processes[name].log_tail() for name in not_ready}
        raise AssertionError(f"not ready after 90 s: {not_ready}; their logs: {logs}") from None
    probe = keten("probe", "ready", env=service_processes["consent"].env)
    assert probe.returncode == 0, "the container healthcheck command agrees"
    for process in service_processes.values():
        assert process.get("/livez").json() == {"alive": True, "dead": []}
        [report] = process.get("/readyz").json()["services"].values()
        assert report["broker"] == "ok"

    utrecht = agency_credentials(Settings.from_env(production_env), "gemeente-utrecht")
    result = run_demo(f"http://{production_env['GATEWAY_ADDRESS']}", out=lambda *_: None, credentials=utrecht)

    expected = {
        "gateway": ['keten_requests_total{entrypoint="request_share",kind="http",outcome="ok"'],
        "case_registration": [
            'keten_requests_total{entrypoint="register_case",kind="rpc",outcome="ok"',
            'keten_events_published_total{service="case_registration"}',
            'keten_relay_leader{service="case_registration"} 1.0',
        ],
        "consent": [
            'keten_messages_handled_total{event="CaseRegistered",outcome="processed",service="consent"}',
            'keten_consumer_blocked{service="consent"} 0.0',
        ],
        "data_sharing": [
            'keten_share_decisions_total{outcome="shared",reason_code="allowed"}',
            'keten_message_handling_seconds_count{event="ConsentGiven",service="data_sharing"}',
            'keten_relay_lag_events{service="data_sharing"} 0.0',
        ],
        "notification": [
            # The demo's citizen chose e-mail; with no mail server configured, a letter goes.
            'keten_notifications_total{channel="letter",status="sent"}',
            'keten_messages_handled_total{event="DataShared",outcome="processed",service="notification"}',
        ],
        "retention": [
            'keten_messages_handled_total{event="DataShared",outcome="processed",service="retention"}',
        ],
    }

    def metrics_shown() -> bool:
        for name, samples in expected.items():
            text = service_processes[name].get("/metrics").text
            missing = [sample for sample in samples if sample not in _sorted_labels(text)]
            assert not missing, f"{name} does not show {missing}"
        return True

    eventually(metrics_shown, timeout=30, interval=0.5)

    declared = {metric._name for metric in vars(metrics).values() if hasattr(metric, "_name")}
    for name, process in service_processes.items():
        families = list(text_string_to_metric_families(process.get("/metrics").text))
        shown = {family.name for family in families}
        assert declared <= shown, f"{name} lacks {declared - shown}"
        for family in families:
            if not family.name.startswith("keten_"):
                continue
            for sample in family.samples:
                assert set(sample.labels) - {"le"} <= metrics.LABEL_NAMES, sample
                for value in sample.labels.values():
                    assert SAFE_LABEL_VALUE.match(value), f"{family.name} has a free-form label value"
                    assert not any(v.lower() in value.lower() for v in CITIZEN_VALUES)

    _the_share_is_followed_through_every_service_in_the_logs(service_processes, result.case_id)


def _the_share_is_followed_through_every_service_in_the_logs(
    processes: dict[str, ServiceProcess], case_id: str
) -> None:
    for process in processes.values():
        process.stop()  # flushes and closes the logs
    records = {name: process.log_records() for name, process in processes.items()}

    everything = json.dumps(records, ensure_ascii=False).lower()
    for value in CITIZEN_VALUES:
        assert value.lower() not in everything, "personal data must never reach the logs"

    [share_request] = [
        r for r in records["gateway"] if r.get("entrypoint") == "request_share" and r.get("status") == 200
    ]
    correlation_id = share_request["correlation_id"]
    assert correlation_id

    def messages(service: str) -> list[str]:
        return [r["message"] for r in records[service] if r.get("correlation_id") == correlation_id]

    assert any(m.startswith("rpc request_share: ok") for m in messages("data_sharing"))
    assert any(m.startswith("published data_sharing.DataShared") for m in messages("data_sharing"))
    assert any("DataShared from data_sharing" in m and "processed" in m for m in messages("notification"))
    assert any("DataShared from data_sharing" in m and "processed" in m for m in messages("retention"))
    for name, service_records in records.items():
        assert {r["service"] for r in service_records} == {name}, "a one-service process names it"
    assert case_id  # the case's own events carry the case's correlation


def _sorted_labels(text: str) -> str:
    """The exposition with each sample's labels in name order, so tests can match lines."""
    lines = []
    for line in text.splitlines():
        match = re.match(r"^(\w+)\{(.*)\} (.*)$", line)
        if match:
            labels = sorted(re.findall(r'(\w+="[^"]*")', match.group(2)))
            line = f"{match.group(1)}{{{','.join(labels)}}} {match.group(3)}"
        lines.append(line)
    return "\n".join(lines)


def test_readiness_fails_while_the_broker_is_unreachable_but_the_process_stays_alive(production_env, rabbit):
    ops_port = free_port()
    settings = Settings.from_env({**production_env, "OPS_PORT": str(ops_port)})
    runner = build_runner(settings, ["case_registration"], **production_env, OPS_PORT=str(ops_port))
    runner.start()
    try:
        ready = requests.get(f"http://127.0.0.1:{ops_port}/readyz", timeout=10)
        assert ready.status_code == 200

        requests.delete(
            f"{rabbit.api}/vhosts/{requests.utils.quote(rabbit.vhost, safe='')}",
            auth=("guest", "guest"),
            timeout=30,
        ).raise_for_status()

        def not_ready() -> dict[str, Any] | None:
            response = requests.get(f"http://127.0.0.1:{ops_port}/readyz", timeout=10)
            return response.json() if response.status_code == 503 else None

        report = eventually(not_ready, timeout=15, interval=0.5)["services"]["case_registration"]
        assert report["ok"] is False and report["broker"] != "ok"
        assert report["store"] == "ok"
        assert requests.get(f"http://127.0.0.1:{ops_port}/livez", timeout=10).status_code == 200
    finally:
        runner.kill()  # a graceful stop waits for the broker that is gone


def test_keten_migrate_creates_every_table_and_the_queues_then_exits(
    production_env, rabbit, postgres_dsn, pg_schema
):
    result = keten("migrate", env=production_env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "migrated" in result.stdout

    with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (pg_schema,))
        tables = {row[0] for row in cur.fetchall()}
    conn.close()
    for service in ("case_registration", "consent", "data_sharing", "notification", "retention"):
        assert f"{service}_events" in tables
    assert "keten_keys" in tables

    queues = {queue["name"] for queue in rabbit.get(f"/queues/{requests.utils.quote(rabbit.vhost, safe='')}")}
    assert {"keten.dead-letter", "keten.consent.events", "keten.retention.events"} <= queues

    assert keten("migrate", env=production_env).returncode == 0, (
        "migrating twice changes nothing and succeeds"
    )
