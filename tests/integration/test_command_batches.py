"""data_sharing carries out the agencies' commands delivered at once in one transaction: a
process killed (SIGKILL) in the middle of such a batch loses nothing and doubles nothing, a
copy of a command changes nothing, a command refused by the rules is refused alone while its
batch's neighbours are decided, and a revoked key holds from its commit. On the real RabbitMQ and
PostgreSQL, each service its own process."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from keten.demo import Client, share_request_command
from keten_client import AgencyClient, InboxMessage, command_headers
from keten_client.protocol import unb64
from services.data_sharing.domain import share_id
from shared.agencies import AgencyRegistry
from shared.config import Settings
from tests.integration.test_batches import _batch_sizes
from tests.integration.test_command_replay import publish
from tests.support import (
    ServiceProcess,
    agency_credentials,
    eventually,
    register_active_cases,
    running_services,
    while_progressing,
)

#: Processes start slowly on a loaded machine: more than the default 300 s per test.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

#: Share requests waiting in data_sharing's commands queue while it is down.
BACKLOG = 96
CASES = 3
#: Small batches, so that a kill finds one open.
BATCH = 8
KILLS = 3
RECIPIENT = "kredietbank-utrecht"


@pytest.fixture
def platform(production_env, tmp_path) -> Iterator[tuple[dict[str, str], dict[str, ServiceProcess]]]:
    env = {
        **production_env,
        "KETEN_RPC_TIMEOUT": "5",
        "KETEN_CONSUMER_BATCH": str(BATCH),
        # Restarts on a loaded machine can keep the backlog waiting longer than the default
        # 300 s; a command older than that is refused as expired, which is not under test here.
        "KETEN_COMMAND_WINDOW": "3600",
    }
    names = ("case_registration", "consent", "data_sharing", "gateway")
    processes = {name: ServiceProcess(name, env, tmp_path) for name in names}
    with running_services(env, processes):
        yield env, processes


def _active_cases_and_data_sharing_down(
    env: dict[str, str], processes: dict[str, ServiceProcess], db: Any
) -> tuple[Any, list[str]]:
    """Cases active in data_sharing's case facts; then data_sharing stopped, so that the
    commands sent next wait in its queue and are delivered in batches."""
    # A process starts slowly on a loaded machine: what fails the test is one that never does.
    eventually(lambda: all(process.ready() for process in processes.values()), timeout=300, interval=0.5)
    settings = Settings.from_env(env)
    credentials = agency_credentials(settings, "gemeente-utrecht")
    # The gateway answers slowly on a loaded machine: more than the default 10 s per call.
    client = Client(f"http://{env['GATEWAY_ADDRESS']}", credentials, timeout=120)
    case_ids = register_active_cases(client, [str(uuid.uuid4()) for _ in range(CASES)])

    def active_in_data_sharing() -> bool:
        with db.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM data_sharing_case_facts WHERE case_id = ANY(%s) AND status = 'active'",
                (case_ids,),
            )
            return bool(cur.fetchone()[0] == CASES)

    eventually(active_in_data_sharing, timeout=300, interval=0.5)
    processes["data_sharing"].stop()
    return dataclasses.replace(credentials, amqp_url=env["AMQP_URI"]), case_ids


def _decisions(db: Any, requests: list[dict[str, Any]]) -> Counter[str]:
    """How often the share of each of ``requests`` was decided: its first event, its ledger row."""
    ids = [str(share_id(uuid.UUID(command["request_id"]), RECIPIENT)) for command in requests]
    with db.cursor() as cur:
        cur.execute(
            "SELECT originator_id::text FROM data_sharing_events"
            " WHERE originator_version = 1 AND originator_id::text = ANY(%s)",
            (ids,),
        )
        events = Counter(row[0] for row in cur.fetchall())
        cur.execute("SELECT share_id FROM data_sharing_ledger WHERE share_id = ANY(%s)", (ids,))
        ledger = Counter(row[0] for row in cur.fetchall())
    return events + ledger


def _answers(client: AgencyClient, wanted: set[str], timeout: float = 300) -> dict[str, list[InboxMessage]]:
    """The answers in the agency's inbox, by the command they answer, until each of ``wanted``
    has one."""
    found: dict[str, list[InboxMessage]] = {}

    def all_answered() -> bool:
        for message in client.inbox(timeout=1):
            if message.name in ("CommandAccepted", "CommandRejected"):
                found.setdefault(str(message.data.get("in_reply_to")), []).append(message)
        return wanted <= set(found)

    while_progressing(all_answered, progress=lambda: len(found), stall=timeout, interval=0.5)
    return found


def test_a_data_sharing_killed_in_the_middle_of_a_batch_of_commands_loses_and_doubles_nothing(
    platform, postgres_dsn
):
    env, processes = platform
    db = psycopg2.connect(postgres_dsn, options=f"-c search_path={env['DATABASE_SCHEMA']}")
    db.autocommit = True
    credentials, case_ids = _active_cases_and_data_sharing_down(env, processes, db)
    requests = [share_request_command(case_ids[index % CASES]) for index in range(BACKLOG)]
    refused_at = {BACKLOG // 3, BACKLOG // 2}
    for index in refused_at:  # refused by the rules, amid the batch: no such case
        requests[index] = {**requests[index], "case_id": str(uuid.uuid4())}
    with AgencyClient(credentials) as client:
        sent = [client.send("data_sharing", "request_share", command) for command in requests]
    expected = Counter(
        {
            str(share_id(uuid.UUID(command["request_id"]), RECIPIENT)): 2  # its event and ledger row
            for index, command in enumerate(requests)
            if index not in refused_at
        }
    )

    killed_at = []
    for _ in range(KILLS):
        before = sum(_decisions(db, requests).values())
        processes["data_sharing"].start()
        # Killed as soon as it committed a batch past where it stood: the next one is open.
        deadline = time.monotonic() + 300
        while sum(_decisions(db, requests).values()) <= before and time.monotonic() < deadline:
            assert processes["data_sharing"].process.poll() is None, "data_sharing exited"
            time.sleep(0.02)
        processes["data_sharing"].kill()
        killed_at.append(sum(_decisions(db, requests).values()) // 2)
    processes["data_sharing"].start()

    with AgencyClient(credentials) as client:
        answers = _answers(client, set(sent))
    decided = _decisions(db, requests)
    missing = {
        index: [(a.name, (a.data.get("error") or {}).get("code")) for a in answers[message_id]]
        for index, (message_id, command) in enumerate(zip(sent, requests, strict=True))
        if decided[str(share_id(uuid.UUID(command["request_id"]), RECIPIENT))] != 2
        and index not in refused_at
    }
    log = processes["data_sharing"].log_path.read_text(errors="replace").splitlines()
    noted = [
        line[:300] for line in log if any(w in line for w in ("reject", "one at a time", "fail", "held"))
    ]
    assert decided == expected, (
        f"every share decided exactly once; not decided: {missing}; log: {noted[-20:]}"
    )
    for index, message_id in enumerate(sent):
        kinds = {answer.name for answer in answers[message_id]}
        assert kinds == ({"CommandRejected"} if index in refused_at else {"CommandAccepted"}), index
        # An answer sent again after a kill is the same message: the agency sees it once.
        assert len({answer.message_id for answer in answers[message_id]}) == 1
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM keten_seen_ids WHERE id = ANY(%s)", (sent,))
        assert cur.fetchone()[0] == BACKLOG, "each command's id remembered once"
    print(f"\ncommand batches: killed at {killed_at} of {BACKLOG - len(refused_at)} decided")
    assert any(0 < at < BACKLOG - len(refused_at) for at in killed_at), "killed amid the backlog"
    assert max(_batch_sizes({"data_sharing": processes["data_sharing"]})) > 1, "taken in batches"


def _signed_command(credentials: Any, command: dict[str, Any]) -> dict[str, Any]:
    """A share request as an agency's client publishes it (``keten_client.AgencyClient.send``)."""
    raw = json.dumps(command).encode()
    message_id = str(uuid.uuid4())
    key = f"{credentials.agency}.data_sharing.request_share"
    return {
        "body": raw,
        "routing_key": key,
        "message_id": message_id,
        "headers": command_headers(
            credentials.key_id, unb64(credentials.signing_private_key), key, message_id, raw
        ),
        "content_type": "application/json",
    }


def test_a_copy_changes_nothing_and_a_revoked_key_holds_from_its_commit(platform, postgres_dsn):
    env, processes = platform
    db = psycopg2.connect(postgres_dsn, options=f"-c search_path={env['DATABASE_SCHEMA']}")
    db.autocommit = True
    credentials, case_ids = _active_cases_and_data_sharing_down(env, processes, db)
    requests = [share_request_command(case_ids[n % CASES]) for n in range(BATCH - 2)]
    messages = [_signed_command(credentials, command) for command in requests]
    # A copy of the first command taken off the wire, sent again: delivered in the same batch.
    publish(env["AMQP_URI"], *messages, messages[0])
    sent = [message["message_id"] for message in messages]
    processes["data_sharing"].start()
    with AgencyClient(credentials) as client:
        answers = _answers(client, set(sent))
        if len(answers[sent[0]]) < 2:
            answers = {**answers, sent[0]: answers[sent[0]] + _answers(client, {sent[0]})[sent[0]]}
    assert sorted(a.name for a in answers[sent[0]]) == ["CommandAccepted", "CommandRejected"]
    [replayed] = [a for a in answers[sent[0]] if a.name == "CommandRejected"]
    assert replayed.data["error"]["code"] == "command_replayed"
    assert all({a.name for a in answers[message_id]} == {"CommandAccepted"} for message_id in sent[1:])
    assert sum(_decisions(db, requests).values()) == 2 * len(messages), "the copy decided nothing"
    assert max(_batch_sizes({"data_sharing": processes["data_sharing"]})) > 1, "taken in a batch"

    AgencyRegistry.for_settings(Settings.from_env(env)).revoke(credentials.agency)
    late_request = share_request_command(case_ids[0])
    late = _signed_command(credentials, late_request)
    publish(env["AMQP_URI"], late)
    with AgencyClient(credentials) as client:
        answers = _answers(client, {late["message_id"]})
    assert [a.data["error"]["code"] for a in answers[late["message_id"]]] == ["bad_signature"]
    assert not _decisions(db, [late_request]), "nothing decided on a revoked key"
