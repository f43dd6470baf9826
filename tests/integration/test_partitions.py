"""Event streams partitioned by case (``KETEN_EVENT_PARTITIONS``): two replicas of notification
take disjoint partitions, every share is notified exactly once and in order per case, and when a
replica is killed the other takes its partitions over. On the real RabbitMQ and PostgreSQL, each
service (and each replica) its own process."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator

import psycopg2
import pytest
from kombu import Connection

from keten.demo import Client, share_request_command
from shared.config import Settings
from shared.partitions import partition_of
from shared.topology import DEAD_LETTER_QUEUE
from tests.integration.test_batches import steadily
from tests.integration.test_faults import _books, _pending_deliveries
from tests.support import (
    ServiceProcess,
    agency_credentials,
    eventually,
    notifying_env,
    register_active_cases,
    running_services,
    while_progressing,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PARTITIONS = 4
REPLICAS = 2
CASES_PER_PARTITION = 2
#: Long enough for both replicas to subscribe to their own partitions first.
STANDBY_DELAY = 20


@pytest.fixture
def partitioned(
    production_env, mailbox, tmp_path
) -> Iterator[tuple[dict[str, str], dict[str, ServiceProcess]]]:
    env = {
        **notifying_env(production_env, mailbox, tmp_path / "letters"),
        "KETEN_RPC_TIMEOUT": "5",
        "KETEN_EVENT_PARTITIONS": str(PARTITIONS),
        "KETEN_STANDBY_DELAY": str(STANDBY_DELAY),
        # A replica killed between a notice's claim and its record holds it this long; longer
        # than any send takes, so that the other replica never takes a live claim for stale.
        "KETEN_NOTIFY_STALE_SECONDS": "20",
    }
    processes = {
        name: ServiceProcess(name, env, tmp_path)
        for name in ("case_registration", "consent", "data_sharing", "retention", "gateway")
    }
    for replica in range(REPLICAS):
        replica_env = {**env, "KETEN_REPLICA": str(replica), "KETEN_REPLICAS": str(REPLICAS)}
        name = f"notification-{replica}"
        processes[name] = ServiceProcess("notification", replica_env, tmp_path, log_name=name)
    with running_services(env, processes):
        yield env, processes


def _partitions_taken(process: ServiceProcess) -> Counter[int]:
    """How many events of each partition the replica took, from its log."""
    taken: Counter[int] = Counter()
    for line in process.log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("stream"):
            taken[int(record["stream"].rpartition(".p")[2])] += 1
        for stream in record.get("streams") or ():
            taken[int(stream.rpartition(".p")[2])] += 1
    return taken


def _dead_letters(amqp_uri: str) -> int:
    with Connection(amqp_uri) as connection:
        return int(connection.channel().queue_declare(DEAD_LETTER_QUEUE, passive=True).message_count)


def test_two_replicas_take_disjoint_partitions_and_one_takes_over_when_the_other_dies(
    partitioned, postgres_dsn, mailbox
):
    env, processes = partitioned
    eventually(lambda: all(p.ready() for p in processes.values()), timeout=240, interval=0.5)
    client = Client(
        f"http://{env['GATEWAY_ADDRESS']}", agency_credentials(Settings.from_env(env), "gemeente-utrecht")
    )
    # Cases spread evenly over the partitions.
    per_partition: dict[int, list[str]] = {n: [] for n in range(PARTITIONS)}
    while any(len(cases) < CASES_PER_PARTITION for cases in per_partition.values()):
        case_id = str(uuid.uuid4())
        cases = per_partition[partition_of(case_id, PARTITIONS)]
        if len(cases) < CASES_PER_PARTITION:
            cases.append(case_id)
    case_ids = [case_id for cases in per_partition.values() for case_id in cases]
    register_active_cases(client, case_ids)
    db = psycopg2.connect(postgres_dsn, options=f"-c search_path={env['DATABASE_SCHEMA']}")
    db.autocommit = True

    def share(rounds: int) -> list[str]:
        ids = []
        for _ in range(rounds):
            for case_id in case_ids:
                command = share_request_command(case_id)
                answer = steadily(client, command)
                ids.extend(d["share_id"] for d in answer["decisions"])
        return ids

    def notified_once(ids: list[str]) -> bool:
        books = _books(db, ids)
        expected = Counter(dict.fromkeys(ids, 1))
        wrong = {
            key: {
                "missing": sum(1 for i in ids if books[key][i] == 0),
                "doubled": sum(1 for n in books[key].values() if n > 1),
            }
            for key in ("overview", "notifications", "retention")
            if books[key] != expected
        }
        if wrong:
            print(f"not yet: {wrong}", flush=True)  # what a timeout below leaves, for the log
        return not wrong

    def progress(ids: list[str]) -> tuple[int, ...]:
        books = _books(db, ids)
        return tuple(sum(books[key].values()) for key in ("overview", "notifications", "retention"))

    before = share(3)
    # However slowly a loaded machine goes: it fails when nothing moves for two minutes.
    while_progressing(lambda: notified_once(before), lambda: progress(before), stall=120, interval=1)
    first, second = (_partitions_taken(processes[f"notification-{n}"]) for n in range(REPLICAS))
    print(f"\npartitions taken: replica 0 {dict(first)}, replica 1 {dict(second)}")
    assert set(first) == {0, 2} and set(second) == {1, 3}, "each replica took its own partitions, all taken"

    # Replica 1 dies for good: once its standby delay is over, replica 0 takes its partitions.
    processes["notification-1"].kill()
    after = share(2)
    while_progressing(
        lambda: notified_once(before + after),
        lambda: progress(before + after),
        stall=STANDBY_DELAY + 120,
        interval=1,
    )
    taken_over = _partitions_taken(processes["notification-0"])
    print(f"after replica 1 died: replica 0 {dict(taken_over)}")
    assert set(taken_over) == {0, 1, 2, 3}
    # Nothing out of order or conflicting: no event was dead-lettered.
    assert _dead_letters(env["AMQP_URI"]) == 0
    # Both replicas' dispatchers look at the one delivery queue: each notice went out once.
    while_progressing(lambda: not _pending_deliveries(db), lambda: _pending_deliveries(db), stall=60)
    sent = Counter(mail["Message-ID"] for mail in mailbox.messages)
    assert sent and all(n == 1 for n in sent.values()), f"e-mails sent twice: {sent.most_common(3)}"
