"""The platform on a 3-node RabbitMQ cluster with quorum queues: one node stopped under a steady
load of shares loses nothing and doubles nothing. The cluster runs on this machine beside the
system's node (``scripts/rabbitmq-cluster.sh``: own node names, ports and data directories,
owned by the rabbitmq user) and is deleted afterwards. The services connect with the nodes' URIs
in ``AMQP_URI`` (kombu fails over to the next node when its node goes)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import requests

from keten.demo import Client, share_request_command
from keten.platform import SERVICES
from shared.config import Settings
from tests.conftest import GENEROUS_LOGIN_LIMITS, free_port, secrets_env
from tests.integration.test_faults import ShareLoad, _books, _decisions
from tests.support import (
    ServiceProcess,
    agency_credentials,
    eventually,
    notifying_env,
    register_active_cases,
    running_services,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.timeout(1500)]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rabbitmq-cluster.sh"
CASES = 3
STOPPED_NODE = 1
MANAGEMENT = "http://127.0.0.1:{port}/api"


#: Where the cluster's nodes keep their data and logs (deleted with the cluster).
DIRECTORY = os.path.join(tempfile.gettempdir(), f"keten-rabbitmq-cluster-{uuid.uuid4().hex[:8]}")


def cluster(*args: str, timeout: float = 600) -> str:
    result = subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "KETEN_CLUSTER_DIR": DIRECTORY},
    )
    assert result.returncode == 0, f"rabbitmq-cluster.sh {' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout.strip()


@pytest.fixture(scope="module")
def rabbitmq_cluster() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("the cluster's nodes run as the rabbitmq user: needs root")  # CI fails on a skip
    try:
        cluster("up")
        yield cluster("uri")
    finally:
        cluster("down")


def _queue_nodes(uri: str) -> dict[str, list[str]]:
    """Where each of the platform's event queues keeps its replicas (members)."""
    port = int(uri.split(";")[0].rsplit(":", 1)[1].split("/")[0]) + 10000
    queues = requests.get(
        MANAGEMENT.format(port=port) + "/queues/%2F", auth=("guest", "guest"), timeout=10
    ).json()
    return {q["name"]: q.get("members", []) for q in queues if q["name"].endswith(".events")}


def test_the_platform_on_three_nodes_loses_and_doubles_nothing_when_a_node_stops(
    rabbitmq_cluster, pg_schema, postgres_dsn, mailbox, tmp_path
):
    env = notifying_env(
        {
            "AMQP_URI": rabbitmq_cluster,
            "DATABASE_URL": postgres_dsn,
            "DATABASE_SCHEMA": pg_schema,
            "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
            "KETEN_RELAY_INTERVAL": "0.05",
            "KETEN_RPC_TIMEOUT": "5",
            **GENEROUS_LOGIN_LIMITS,
            **secrets_env(),
        },
        mailbox,
        tmp_path / "letters",
    )
    processes = {name: ServiceProcess(name, env, tmp_path) for name in SERVICES}
    with running_services(env, processes):
        members = _queue_nodes(rabbitmq_cluster)
        assert members and all(len(nodes) == 3 for nodes in members.values()), (
            f"quorum queues on 3 nodes: {members}"
        )
        eventually(lambda: all(p.ready() for p in processes.values()), timeout=180, interval=0.5)
        client = Client(
            f"http://{env['GATEWAY_ADDRESS']}", agency_credentials(Settings.from_env(env), "gemeente-utrecht")
        )
        case_ids = register_active_cases(client, [str(uuid.uuid4()) for _ in range(CASES)])
        client.retry_until(
            "data_sharing knows the cases",
            lambda: all(
                client.call("POST", "/api/shares", json=share_request_command(c))["decisions"]
                for c in case_ids
            ),
        )
        db = psycopg2.connect(postgres_dsn, options=f"-c search_path={pg_schema}")
        db.autocommit = True

        load = ShareLoad(client, case_ids)
        load.start()
        try:
            time.sleep(5)
            stopped_at = time.monotonic()
            cluster("stop", str(STOPPED_NODE))  # the node every service connected to first
            time.sleep(20)  # the load goes on, on two nodes
        finally:
            load.stop()
        accepted = load.accepted()
        after = [r for r in accepted if r.sent_at > stopped_at]
        share_ids = [s for r in accepted for s in r.share_ids]
        assert len(accepted) == len(load.requests), "every request answered (retried as an agency would)"
        assert after, "shares were requested and accepted while the node was down"

        expected = Counter(dict.fromkeys(share_ids, 1))
        eventually(
            lambda: all(_books(db, share_ids)[key] == expected for key in ("overview", "retention")),
            timeout=180,
            interval=1,
        )
        books = _books(db, share_ids)
        decisions = _decisions(Settings.from_env(env))
        print(
            f"\ncluster: {len(accepted)} requests ({len(after)} after node {STOPPED_NODE} stopped), "
            f"{len(share_ids)} shares; duplicated decisions: {sum(1 for n in decisions.values() if n > 1)}"
        )
        assert all(decisions[r.request_id] == 1 for r in accepted), "every accepted request decided once"
        for key in ("overview", "retention", "notifications"):
            assert books[key] == expected, f"every share exactly once in {key}"
