"""A consumer knows its own position without asking the store for it per message
(``KetenApplication.taken_position``), and a position another replica moved meanwhile is never
written over: the write fails as a whole and the consumer reads the store again."""

from __future__ import annotations

import uuid

import psycopg2
import pytest
from eventsourcing.persistence import IntegrityError

from services.retention.application import RetentionUseCases
from shared.config import Settings
from shared.contracts.envelope import ReceivedTracking
from tests.conftest import secrets_env

pytestmark = pytest.mark.integration

STREAM = "data_sharing"


def taken(position: int) -> ReceivedTracking:
    return ReceivedTracking(STREAM, position, event="DataShared", message_id=str(uuid.uuid4()), digest="d")


def stored_position(dsn: str, schema: str) -> int:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            f'SELECT notification_id FROM "{schema}".retention_tracking WHERE application_name = %s',
            (STREAM,),
        )
        return int(cur.fetchone()[0])


def received(dsn: str, schema: str) -> list[int]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            f'SELECT position FROM "{schema}".retention_received WHERE stream = %s ORDER BY position',
            (STREAM,),
        )
        return [row[0] for row in cur.fetchall()]


def test_a_position_another_replica_moved_is_not_written_over_and_is_read_again(postgres_dsn, pg_schema):
    settings = Settings.from_env(
        {"DATABASE_URL": postgres_dsn, "DATABASE_SCHEMA": pg_schema, **secrets_env()}
    )
    mine, other = RetentionUseCases(settings), RetentionUseCases(settings)
    assert mine.taken_position(STREAM) == 0
    mine.save_tracked(taken(1))
    assert mine.taken_position(STREAM) == 1

    # Another replica (the partition's consumer before a handover) takes the next one.
    assert other.taken_position(STREAM) == 1
    other.save_tracked(taken(2))
    assert mine.taken_position(STREAM) == 1, "known in the process: not read from the store"

    # Taken singly on what it knew: refused as a whole, and the store is read again.
    with pytest.raises(IntegrityError):
        mine.save_tracked(taken(3))
    assert received(postgres_dsn, pg_schema) == [1, 2]
    assert mine.taken_position(STREAM) == 2

    # Taken in a batch on what it knew: the batch fails as a whole, nothing of it stays.
    other.save_tracked(taken(3))
    with pytest.raises(IntegrityError), mine.batch():
        assert mine.taken_position(STREAM) == 2
        mine.save_tracked(taken(4))
        mine.save_tracked(taken(5))
    assert received(postgres_dsn, pg_schema) == [1, 2, 3]
    assert stored_position(postgres_dsn, pg_schema) == 3
    assert mine.taken_position(STREAM) == 3

    # On what the store says, the batch goes through and the process knows where it stands.
    with mine.batch():
        mine.save_tracked(taken(4))
        mine.save_tracked(taken(5))
    assert received(postgres_dsn, pg_schema) == [1, 2, 3, 4, 5]
    assert stored_position(postgres_dsn, pg_schema) == 5
    assert mine.taken_position(STREAM) == 5
