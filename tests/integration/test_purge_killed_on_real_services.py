"""``keten purge`` killed (SIGKILL) in the middle of a run, and a consuming service killed while it
takes the ``RecordsPurged`` events, on the real RabbitMQ and PostgreSQL, each service its own
process: the next run finishes the purge, each unit is purged (and taken by each service)
exactly once, every key is destroyed and every service forgets the cases' personal rows."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest

from keten.children import stop_with_parent
from keten.demo import Client, close_case_command, share_request_command
from shared.config import Settings
from tests.integration.test_batches import steadily
from tests.support import (
    ServiceProcess,
    agency_credentials,
    eventually,
    keten,
    notifying_env,
    register_active_cases,
    running_services,
)

#: Processes start slowly on a loaded machine: more than the default 300 s per test.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CASES = 10
#: Small batches for the consumers and for the killed purge, so that a kill finds one open.
BATCH = 4
#: ``keten purge`` as the CronJob runs it, in batches of two units (one case) instead of 200.
PURGE_IN_SMALL_BATCHES = (
    "import sys, services.retention.application as retention; retention.PURGE_BATCH = 2;"
    " from keten.cli import main; sys.exit(main())"
)
KILLED = "notification"
#: The services that take ``RecordsPurged`` and the tables in which each keeps a case's rows.
CASE_ROWS = {
    "case_registration": (),
    "consent": ("consent_case_facts", "consent_representations"),
    "data_sharing": (
        "data_sharing_case_facts",
        "data_sharing_consents",
        "data_sharing_objections",
        "data_sharing_agency_objections",
        "data_sharing_safety_overrides",
    ),
    "notification": ("notification_case_facts",),
}


@pytest.fixture
def platform(production_env, mailbox, tmp_path) -> Iterator[tuple[dict[str, str], dict[str, ServiceProcess]]]:
    env = {
        **notifying_env(production_env, mailbox, tmp_path / "letters"),
        "KETEN_RPC_TIMEOUT": "5",
        "KETEN_CONSUMER_BATCH": str(BATCH),
        "KETEN_PURGE_INTERVAL": "0",  # only keten purge purges
    }
    names = ("case_registration", "consent", "data_sharing", "gateway", "notification", "retention")
    processes = {name: ServiceProcess(name, env, tmp_path) for name in names}
    with running_services(env, processes):
        yield env, processes


def closed_cases(env: dict[str, str], processes: dict[str, ServiceProcess]) -> list[str]:
    """``CASES`` cases, each with a share, closed and known closed to retention."""
    eventually(lambda: all(p.ready() for p in processes.values()), timeout=300, interval=0.5)
    client = Client(
        f"http://{env['GATEWAY_ADDRESS']}", agency_credentials(Settings.from_env(env), "gemeente-utrecht")
    )
    case_ids = register_active_cases(client, [str(uuid.uuid4()) for _ in range(CASES)])
    for case_id in case_ids:
        steadily(client, share_request_command(case_id))
        close = f"/api/cases/{case_id}/close"
        client.retry_until(
            "the case is closed", lambda close=close: client.call("POST", close, json=close_case_command())
        )
    return case_ids


def count(db: Any, statement: str, *params: Any) -> int:
    with db.cursor() as cur:
        cur.execute(statement, params or None)
        return int(cur.fetchone()[0])


def purge_process(env: dict[str, str], as_of: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", PURGE_IN_SMALL_BATCHES, "purge", "--as-of", as_of, "--no-progress"],
        env={**env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=stop_with_parent,
    )


def test_a_purge_and_a_consumer_killed_midway_leave_nothing_that_the_next_run_does_not_finish(
    platform, postgres_dsn
):
    env, processes = platform
    case_ids = closed_cases(env, processes)
    db = psycopg2.connect(postgres_dsn, options=f"-c search_path={env['DATABASE_SCHEMA']}")
    db.autocommit = True
    eventually(
        lambda: (
            count(
                db,
                "SELECT count(*) FROM retention_records"
                " WHERE record_kind = 'case_records' AND status = 'scheduled' AND case_id = ANY(%s)",
                case_ids,
            )
            == CASES
        ),
        timeout=120,
        interval=0.2,
    )
    purged_on_record = "SELECT count(*) FROM retention_events WHERE topic LIKE '%RecordsPurged'"
    taken_by = "SELECT count(*) FROM {}_received WHERE event = 'RecordsPurged'"
    as_of = (datetime.now(UTC) + timedelta(days=20 * 365)).isoformat()

    # The first run is killed once it has recorded its first purges; the notification service
    # as soon as it has taken some of them, in the middle of its batches.
    first = purge_process(env, as_of)
    eventually(
        lambda: count(db, purged_on_record) > 0 or first.poll() is not None, timeout=120, interval=0.01
    )
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    recorded_when_killed = count(db, purged_on_record)
    eventually(
        lambda: count(db, taken_by.format(KILLED)) > 0 or count(db, purged_on_record) == 0,
        timeout=120,
        interval=0.01,
    )
    processes[KILLED].kill()
    taken_when_killed = count(db, taken_by.format(KILLED))
    processes[KILLED].start()

    second = keten("purge", "--as-of", as_of, "--no-progress", env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]

    units = 2 * CASES  # the case's own records and its subject's
    assert count(db, purged_on_record) == units, "each unit purged once, the interrupted ones finished"
    live_keys = "SELECT count(*) FROM keten_keys WHERE wrapped_key IS NOT NULL AND case_id = ANY(%s)"
    assert count(db, live_keys, case_ids) == 0

    def forgotten() -> bool:
        return all(count(db, taken_by.format(name)) == units for name in CASE_ROWS) and all(
            count(db, f"SELECT count(*) FROM {table} WHERE case_id = ANY(%s)", case_ids) == 0
            for tables in CASE_ROWS.values()
            for table in tables
        )

    eventually(forgotten, timeout=240, interval=0.5)
    assert count(db, "SELECT count(*) FROM retention_case_facts WHERE case_id = ANY(%s)", case_ids) == 0
    print(
        f"\npurge killed after {recorded_when_killed} of {units} units recorded;"
        f" {KILLED} killed after taking {taken_when_killed}"
    )
    time.sleep(1)  # nothing more arrives: each service took each purge exactly once
    assert all(count(db, taken_by.format(name)) == units for name in CASE_ROWS)
