"""Consistency tokens: what a command wrote, signed; a later command waits for it or is told
to retry; a forged or stale token is refused."""

from __future__ import annotations

import itertools
import time

import pytest

from shared import consistency
from shared.consistency import Recording, TokenKeys, Written
from shared.errors import Conflict, InvalidRequest

KEYS = TokenKeys(b"k" * 32)
CONSENT_GIVEN = Written("consent", "ConsentGiven", 7)


def recording(positions, consumes=("consent.ConsentGiven",)):
    return Recording(keys=KEYS, position=positions, consumes=frozenset(consumes))


def test_a_token_says_what_was_written_and_only_the_latest_position_per_kind():
    token = KEYS.mint(
        [
            Written("consent", "ConsentGiven", 3),
            CONSENT_GIVEN,
            Written("case_registration", "CaseRegistered", 2),
        ]
    )
    assert KEYS.read(token) == (Written("case_registration", "CaseRegistered", 2), CONSENT_GIVEN)


def test_a_forged_or_changed_token_is_refused():
    token = KEYS.mint([CONSENT_GIVEN])
    version, payload, mac = token.split(".")
    other = TokenKeys(b"x" * 32).mint([Written("consent", "ConsentGiven", 10**9)])
    for forged in (
        other,
        f"{version}.{other.split('.')[1]}.{mac}",
        f"{version}.{payload}.{mac[:-2]}AA",
        "v2." + token[3:],
        "not a token",
    ):
        with pytest.raises(InvalidRequest) as refused:
            KEYS.read(forged)
        assert refused.value.code == "invalid_consistency_token"


def test_a_stale_token_is_refused_and_one_of_the_previous_master_key_still_read():
    old = KEYS.mint([CONSENT_GIVEN], now=time.time() - consistency.LIFETIME - 10)
    with pytest.raises(InvalidRequest) as refused:
        KEYS.read(old)
    assert refused.value.code == "stale_consistency_token"
    rotated = TokenKeys(b"n" * 32, previous_master_key=b"k" * 32)
    assert rotated.read(KEYS.mint([CONSENT_GIVEN])) == (CONSENT_GIVEN,)


def test_a_service_that_processed_the_position_takes_the_command_at_once_and_passes_the_token_on():
    seen = recording(lambda stream: 7)
    seen.accept(KEYS.mint([CONSENT_GIVEN]))
    seen.written.append(Written("data_sharing", "DataShared", 4))
    assert set(KEYS.read(seen.token())) == {CONSENT_GIVEN, Written("data_sharing", "DataShared", 4)}


def test_a_service_behind_waits_until_its_consumer_reached_the_position():
    positions = itertools.count(5)  # the consumer takes one event per look
    behind = recording(lambda stream: next(positions))
    behind.accept(KEYS.mint([CONSENT_GIVEN]))
    assert next(positions) > 7


def test_a_service_that_does_not_catch_up_in_time_answers_not_caught_up():
    behind = recording(lambda stream: 6)
    with pytest.raises(Conflict) as refused:
        behind.accept(KEYS.mint([CONSENT_GIVEN]), wait_seconds=0)
    assert (refused.value.code, refused.value.status) == ("not_caught_up", 409)


def test_events_of_kinds_a_service_does_not_consume_are_not_waited_for():
    never = recording(lambda stream: 0)
    never.accept(
        KEYS.mint([Written("consent", "NoticeShown", 9), Written("data_sharing", "DataShared", 3)]),
        wait_seconds=0,
    )


def test_when_enough_workers_wait_already_the_next_is_told_to_retry_at_once():
    import threading

    full = threading.BoundedSemaphore(1)
    full.acquire()
    behind = Recording(
        keys=KEYS, position=lambda stream: 6, consumes=frozenset({"consent.ConsentGiven"}), waiting=full
    )
    with pytest.raises(Conflict):
        behind.accept(KEYS.mint([CONSENT_GIVEN]))


def test_an_answer_carries_the_positions_its_command_recorded_and_the_token_it_was_sent_with(memory_settings):
    from services.case_registration.application import CaseRegistrationUseCases
    from shared.contracts.commands import RegisterCaseSchema, dump_reply, load_command
    from shared.pseudonym import Pseudonymiser
    from tests.factories import case_command

    registration = CaseRegistrationUseCases(memory_settings)
    earlier = Written("consent", "ConsentGiven", 3)
    consistency.start(
        Recording(keys=KEYS, position=lambda stream: 3, consumes=frozenset({"consent.ConsentGiven"}))
    )
    try:
        command = load_command(
            RegisterCaseSchema,
            {**case_command(), "consistency_token": KEYS.mint([earlier])},
            pseudonymise=Pseudonymiser(memory_settings.pseudonym_secret),
        )
        answer = dump_reply(RegisterCaseSchema, registration.register_case(command))
    finally:
        consistency.stop()
    [registered] = [n.id for n in registration.recorder.select_notifications(start=1, limit=10)]
    assert set(KEYS.read(answer["consistency_token"])) == {
        earlier,
        Written("case_registration", "CaseRegistered", registered),
    }


def test_outside_a_worker_that_records_an_answer_has_no_token(memory_settings):
    from shared.contracts.commands import GetLedgerSchema, dump_reply

    assert consistency.current() is None
    assert "consistency_token" not in dump_reply(
        GetLedgerSchema, {"agency": "gemeente-utrecht", "since": None, "until": None, "entries": []}
    )


def test_an_event_of_a_partitioned_log_is_waited_for_in_its_partition():
    in_partition = Written("consent", "ConsentGiven", 7, "consent.p2")
    assert KEYS.read(KEYS.mint([in_partition])) == (in_partition,)
    asked = []
    seen = recording(lambda stream: asked.append(stream) or 7)
    seen.accept(KEYS.mint([in_partition]))
    assert asked == ["consent.p2"]
