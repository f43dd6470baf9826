"""A share is decided on what data_sharing consumed up to the moment it is asked, never on an
earlier copy: the cost work (issue 15) reads a case's facts and its subjects' say in one
statement and keeps a case row parsed while it stays the same; nothing it keeps may let a share
through after an objection, a withdrawn consent, a stopped or closed case was consumed, nor seal
to a key that was rotated out.

The five services on real stores (in-memory SQLite, and PostgreSQL in a schema of the test's
own), wired as the bus wires them. A second data_sharing application over the same store (a
replica: it consumes nothing, another replica's consumer keeps the read models) decides the
same as the one that consumed, also after it decided on the state before the change."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from keten.demo import close_case_command, register_case_command
from services.data_sharing.application import DataSharingUseCases
from shared.config import Settings
from shared.contracts.commands import RequestShareSchema
from shared.wire import KeyPair
from tests.conftest import secrets_env
from tests.factories import (
    activate_command,
    consent_command,
    loaded,
    objection_command,
    received,
    share_command,
)
from tests.wired import WiredPlatform

#: Mitros shares on the ground of consent: it needs the subject's consent.
FROM_MITROS = {
    "agency": "woningcorporatie-mitros",
    "to_agencies": ["gemeente-utrecht"],
    "categories": ["housing"],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: Any) -> Settings:
    if request.param == "sqlite":
        return Settings.from_env({"DATABASE_URL": "sqlite://memory"})
    dsn = request.getfixturevalue("postgres_dsn")
    schema = request.getfixturevalue("pg_schema")
    return Settings.from_env({"DATABASE_URL": dsn, "DATABASE_SCHEMA": schema, **secrets_env()})


@pytest.fixture
def platform(settings: Settings) -> WiredPlatform:
    return WiredPlatform(settings)


@pytest.fixture
def case_id(platform: WiredPlatform) -> str:
    command = register_case_command(str(uuid.uuid4()))
    platform.command("case_registration", "register_case", command)
    platform.command("case_registration", "activate_case", activate_command(command["case_id"]))
    return str(command["case_id"])


@pytest.fixture
def replica(platform: WiredPlatform, settings: Settings) -> DataSharingUseCases | None:
    """data_sharing in another process's place: same store, consumes nothing (only where the
    store is shared between processes: PostgreSQL)."""
    if not settings.uses_postgres:
        return None
    return DataSharingUseCases(settings)


def outcomes(
    platform: WiredPlatform, replica: DataSharingUseCases | None, case_id: str, **changes: Any
) -> set[str]:
    """The outcome (and refusal reason) of a new share request, on data_sharing and its replica."""
    command = share_command(case_id, **changes)
    [decision] = platform.command("data_sharing", "request_share", command)["decisions"]
    found = {f"{decision['outcome']}:{decision['reason_code']}"}
    if replica is not None:
        again = share_command(case_id, **changes)  # a request of its own (a new request_id)
        [other] = replica.request_share(loaded(RequestShareSchema, again, replica.settings)).decisions
        found.add(f"{other.outcome}:{other.reason_code}")
    return found


def test_a_consent_given_then_withdrawn_counts_from_the_moment_it_was_consumed(platform, case_id, replica):
    assert outcomes(platform, replica, case_id, **FROM_MITROS) == {"refused:no_valid_consent"}
    platform.command(
        "consent",
        "give_consent",
        consent_command(case_id, recipients=["gemeente-utrecht"], categories=["housing"]),
    )
    assert outcomes(platform, replica, case_id, **FROM_MITROS) == {"shared:allowed"}
    assert outcomes(platform, replica, case_id, **FROM_MITROS) == {
        "shared:allowed"
    }  # the same case row again
    platform.command(
        "consent",
        "withdraw_consent",
        {
            "schema_version": 1,
            "agency": "gemeente-utrecht",
            "case_id": case_id,
            "subject_bsn": consent_command(case_id)["subject_bsn"],
        },
    )
    assert outcomes(platform, replica, case_id, **FROM_MITROS) == {"refused:no_valid_consent"}


def test_an_objection_stops_the_next_share_and_its_withdrawal_lets_it_through(platform, case_id, replica):
    assert outcomes(platform, replica, case_id) == {"shared:allowed"}
    platform.command("consent", "lodge_objection", objection_command(case_id))
    assert platform.apps["data_sharing"].cases.get(uuid.UUID(case_id)).status == "stopped"
    [refused] = outcomes(platform, replica, case_id)
    assert refused.startswith("refused:")

    objection_id = received(platform.apps["consent"])[-1].data.objection_id
    withdrawal = objection_command(case_id, objection_id=str(objection_id))
    withdrawal.pop("reason")
    platform.command("consent", "withdraw_objection", withdrawal)
    assert outcomes(platform, replica, case_id) == {"shared:allowed"}


def test_a_closed_case_shares_nothing_more(platform, case_id, replica):
    assert outcomes(platform, replica, case_id) == {"shared:allowed"}
    platform.command("case_registration", "close_case", {**close_case_command(), "case_id": case_id})
    [refused] = outcomes(platform, replica, case_id)
    assert refused.startswith("refused:")


def test_content_is_sealed_to_the_recipients_key_of_the_moment_a_rotation_made_current(platform, case_id):
    sharing = platform.apps["data_sharing"]
    registry = sharing.agencies  # the registry its relay seals with
    first = KeyPair.generate()
    registry.add_key("kredietbank-utrecht", first.signing_public_key, first.encryption_public_key)
    assert outcomes(platform, None, case_id) == {"shared:allowed"}
    [message] = sharing.inbox_messages(_last_share(sharing))
    assert first.key_id in message.body.decode()

    rotated = KeyPair.generate()
    registry.rotate("kredietbank-utrecht", rotated.signing_public_key, rotated.encryption_public_key)
    assert outcomes(platform, None, case_id) == {"shared:allowed"}
    [message] = sharing.inbox_messages(_last_share(sharing))
    assert rotated.key_id in message.body.decode() and first.key_id not in message.body.decode()


def _last_share(sharing: DataSharingUseCases) -> Any:
    """The stored ``DataShared`` of the latest share, as the relay reads it."""
    share_id = [e for e in received(sharing) if e.name == "DataShared"][-1].data.share_id
    return next(iter(sharing.events.get(share_id)))
