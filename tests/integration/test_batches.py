"""Consumers take what was delivered in batches (one transaction, one ack): a consumer killed
(SIGKILL) in the middle of a batch loses nothing and doubles nothing, and a message that cannot
apply is dead-lettered on its own while the rest of its batch is taken. On the real RabbitMQ and
PostgreSQL, each service its own process."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg2
import pytest
import requests

from keten.demo import Client, share_request_command
from shared.config import Settings
from shared.contracts.envelope import encode_event
from shared.provenance import EventKeys
from shared.relay import POSITION
from tests.conftest import RABBIT_API, RABBIT_AUTH
from tests.integration.test_event_integrity import dead_letters, publish
from tests.integration.test_faults import _books
from tests.support import (
    ServiceProcess,
    agency_credentials,
    eventually,
    notifying_env,
    register_active_cases,
    running_services,
    while_progressing,
)

#: Processes start slowly on a loaded machine: more than the default 300 s per test.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

#: Shares decided while their consumers are down: the backlog they take in batches.
BACKLOG = 120
CASES = 3
#: Small batches, so that a kill finds one open.
BATCH = 8
#: The services whose consumers are killed while they work through the backlog.
CONSUMERS = ("notification", "retention")
KILLS = 3


@pytest.fixture
def platform(production_env, mailbox, tmp_path) -> Iterator[tuple[dict[str, str], dict[str, ServiceProcess]]]:
    env = {
        **notifying_env(production_env, mailbox, tmp_path / "letters"),
        "KETEN_RPC_TIMEOUT": "5",
        "KETEN_CONSUMER_BATCH": str(BATCH),
        # A kill between a notice's claim and its record holds it this long, not 5 minutes.
        "KETEN_NOTIFY_STALE_SECONDS": "3",
    }
    names = ("case_registration", "consent", "data_sharing", "gateway", *CONSUMERS)
    processes = {name: ServiceProcess(name, env, tmp_path) for name in names}
    with running_services(env, processes, start=[n for n in names if n not in CONSUMERS]):
        yield env, processes


def _shares_decided_while_consumers_are_down(
    env: dict[str, str], processes: dict[str, Any], midway: Callable[[], None] | None = None
) -> list[str]:
    """Shares decided (``BACKLOG``, spread over the cases) while the consumers are down;
    ``midway`` is called when half of them were decided."""
    front = ("case_registration", "consent", "data_sharing", "gateway")
    eventually(lambda: all(processes[name].ready() for name in front), timeout=120, interval=0.5)
    client = Client(
        f"http://{env['GATEWAY_ADDRESS']}", agency_credentials(Settings.from_env(env), "gemeente-utrecht")
    )
    case_ids = [str(uuid.uuid4()) for _ in range(CASES)]
    register_active_cases(client, case_ids)
    share_ids: list[str] = []
    lock = threading.Lock()

    def share(count: int) -> None:
        for index in range(count):
            command = share_request_command(case_ids[index % CASES])
            answer = steadily(client, command)
            with lock:
                share_ids.extend(d["share_id"] for d in answer["decisions"])

    for _half in range(2):
        threads = [threading.Thread(target=share, args=(BACKLOG // 8,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if midway is not None and _half == 0:
            midway()
    return share_ids


def steadily(client: Client, command: dict[str, Any], timeout: float = 120) -> Any:
    """Asks for a share until it is decided, as an agency's system would: the same request
    again after an error (requests are repeat-safe by request_id), on a loaded machine too."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.retry_until(
                "the share is decided", lambda: client.call("POST", "/api/shares", json=command)
            )
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _positions(db: Any) -> dict[str, int]:
    """How far each consumer has taken data_sharing's stream."""
    found = {}
    with db.cursor() as cur:
        for name in CONSUMERS:
            cur.execute(
                f"SELECT notification_id FROM {name}_tracking WHERE application_name = 'data_sharing'"
            )
            row = cur.fetchone()
            found[name] = row[0] if row else 0
    return found


def test_a_consumer_killed_in_the_middle_of_a_batch_loses_and_doubles_nothing(platform, postgres_dsn):
    env, processes = platform
    share_ids = _shares_decided_while_consumers_are_down(env, processes)
    assert len(share_ids) == BACKLOG
    db = psycopg2.connect(postgres_dsn, options=f"-c search_path={env['DATABASE_SCHEMA']}")
    db.autocommit = True
    # The relay has published every decision: the backlog waits in the consumers' queues.
    with db.cursor() as cur:
        cur.execute("SELECT max(notification_id) FROM data_sharing_events")
        newest = cur.fetchone()[0]
    eventually(lambda: _relayed(db) >= newest, timeout=60, interval=0.2)

    expected = Counter(dict.fromkeys(share_ids, 1))
    book_of = {"notification": "overview", "retention": "retention"}

    def done(name: str) -> bool:
        return _books(db, share_ids)[book_of[name]] == expected

    killed_at: list[dict[str, int]] = []
    midway: list[bool] = []
    for _ in range(KILLS):
        before = _positions(db)
        running = [name for name in CONSUMERS if not done(name)]
        for name in running:
            processes[name].start()
        # Each is killed as soon as it committed a batch past where it stood: it is working
        # through the backlog, the next batch open. (A process starts slowly on a loaded
        # machine: what fails the test is one that exits, or takes nothing for minutes.)
        deadline = time.monotonic() + 300
        while running and time.monotonic() < deadline:
            now = _positions(db)
            for name in [n for n in running if now[n] > before[n]]:
                processes[name].kill()
                running.remove(name)
                midway.append(not done(name))
            exited = [n for n in running if processes[n].process.poll() is not None]
            assert not exited, f"{exited} exited{describe(env, processes, db)}"
            time.sleep(0.02)
        assert not running, f"{running} took nothing within 300 s{describe(env, processes, db)}"
        killed_at.append(_positions(db))
    for name in CONSUMERS:
        processes[name].start()

    keys = ("overview", "retention", "notifications")
    while_progressing(
        lambda: all(_books(db, share_ids)[key] == expected for key in keys),
        progress=lambda: (_positions(db), tuple(sum(_books(db, share_ids)[key].values()) for key in keys)),
        stall=120,
        interval=1,
        describe=lambda: describe(env, processes, db),
    )
    books = _books(db, share_ids)
    batches = _batch_sizes(processes)
    print(f"\nbatches: killed at {killed_at}; batch sizes taken: {sorted(batches, reverse=True)[:10]} ...")
    assert any(0 < at["notification"] < newest for at in killed_at), (
        "killed while the backlog was being taken"
    )
    for key in ("overview", "retention", "notifications"):
        assert books[key] == expected, f"every share exactly once in {key}"
    assert max(batches) > 1, "the backlog was taken in batches"
    in_batches = [
        r for name in CONSUMERS for r in processes[name].log_records() if "event" in r and "batch" in r
    ]
    assert in_batches, "a message taken in a batch has a log line of its own"
    assert all(r["correlation_id"] for r in in_batches), "under its correlation id, to follow a share by"


def describe(env: dict[str, str], processes: dict[str, ServiceProcess], db: Any) -> str:
    """What a stuck consumer looks like from outside, for the failure message: each process
    (running, ready, its last log lines), the vhost's queues (ready, unacknowledged, consumers)
    and the sessions of the schema's database that wait or sit in a transaction."""
    lines = []
    for name, process in processes.items():
        code = process.process.poll() if process.process is not None else "never started"
        lines.append(f"{name}: exit {code}, ready {process.ready() if code is None else False}")
        if name in CONSUMERS:
            tail = process.log_path.read_text(errors="replace").splitlines()[-6:]
            lines.extend(f"  {line[:300]}" for line in tail)
    vhost = env["AMQP_URI"].rsplit("/", 1)[1]
    try:
        queues = requests.get(f"{RABBIT_API}/queues/{vhost}", auth=RABBIT_AUTH, timeout=10).json()
        lines.extend(
            f"queue {q['name']}: ready {q.get('messages_ready')}, unacked"
            f" {q.get('messages_unacknowledged')}, consumers {q.get('consumers')}"
            for q in queues
            if ".events" in q["name"]
        )
    except (requests.RequestException, ValueError, KeyError) as exc:
        lines.append(f"queues: {type(exc).__name__}")
    with db.cursor() as cur:
        cur.execute(
            "SELECT pid, state, wait_event_type, wait_event, left(query, 120) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND (wait_event_type = 'Lock' OR state LIKE 'idle in transaction%')"
        )
        lines.extend(f"session {row}" for row in cur.fetchall())
    return "\n" + "\n".join(lines)


def _relayed(db: Any) -> int:
    with db.cursor() as cur:
        cur.execute(
            f"SELECT notification_id FROM data_sharing_tracking WHERE application_name = '{POSITION}'"
        )
        row = cur.fetchone()
    return row[0] if row else 0


def _records(processes: dict[str, ServiceProcess], names: Iterable[str]) -> list[dict[str, Any]]:
    """The JSON log records of ``names`` (a line cut short by a kill -9 is left out)."""
    records = []
    for name in names:
        for line in processes[name].log_path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def _batch_sizes(processes: dict[str, ServiceProcess]) -> list[int]:
    return [int(r["batch"]) for r in _records(processes, processes) if "batch" in r] or [1]


def test_a_message_that_cannot_apply_is_dead_lettered_alone_and_its_batch_is_taken(platform, postgres_dsn):
    env, processes = platform
    settings = Settings.from_env(env)

    def conflicting_copy() -> None:
        """Publishes, amid the backlog, a copy of data_sharing's first decision under another
        message id, properly signed: it claims a position that another event holds."""
        from services.data_sharing.application import DataSharingUseCases

        app = DataSharingUseCases(settings)
        try:
            decisions = [
                message
                for notification in app.recorder.select_notifications(start=1, limit=100)
                if (
                    message := encode_event(
                        app.mapper.to_domain_event(notification), "data_sharing", notification.id
                    )
                )
                and message.headers["keten-event"] == "DataShared"
            ]
        finally:
            app.close()
        original = decisions[0]
        body = json.loads(original.body)
        body["message_id"] = str(uuid.uuid4())
        copy = json.dumps(body).encode()
        headers = {
            **original.headers,
            **EventKeys.for_settings(settings).sign("data_sharing", copy).headers(),
        }
        publish(settings.amqp_uri, copy, original.routing_key, headers)

    share_ids = _shares_decided_while_consumers_are_down(env, processes, midway=conflicting_copy)
    db = psycopg2.connect(postgres_dsn, options=f"-c search_path={env['DATABASE_SCHEMA']}")
    db.autocommit = True
    processes["notification"].start()
    expected = Counter(dict.fromkeys(share_ids, 1))
    eventually(lambda: _books(db, share_ids)["overview"] == expected, timeout=90, interval=0.5)
    assert dead_letters(settings.amqp_uri, wanted=1) == [("notification", "conflict")]
    books = _books(db, share_ids)
    assert books["notifications"] == expected, "every share notified exactly once"
    assert max(_batch_sizes({"notification": processes["notification"]})) > 1, "taken in batches"
