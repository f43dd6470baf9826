"""The psycopg2 persistence module passes the eventsourcing library's own recorder tests."""

from __future__ import annotations

import uuid

import psycopg2
import pytest
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)

from shared.db import PgDatastore
from shared.pgstore import PgAggregateRecorder, PgApplicationRecorder, PgProcessRecorder, PgTrackingRecorder
from tests.conftest import POSTGRES_DSN, unavailable

pytestmark = pytest.mark.integration


class PgRecorderCase:
    recorder_class: type = PgAggregateRecorder

    @classmethod
    def setUpClass(cls) -> None:
        try:
            psycopg2.connect(POSTGRES_DSN, connect_timeout=3).close()
        except psycopg2.Error as exc:
            unavailable("PostgreSQL", type(exc).__name__)
        cls.schema = f"test_recorders_{uuid.uuid4().hex[:10]}"
        cls.datastore = PgDatastore(POSTGRES_DSN, cls.schema)
        super().setUpClass()  # type: ignore[misc]

    @classmethod
    def tearDownClass(cls) -> None:
        cls.datastore.close()
        conn = psycopg2.connect(POSTGRES_DSN)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{cls.schema}" CASCADE')
        conn.close()
        super().tearDownClass()  # type: ignore[misc]

    def setUp(self) -> None:
        self.prefix = f"t{uuid.uuid4().hex[:10]}"
        super().setUp()  # type: ignore[misc]

    def create_recorder(self):  # type: ignore[no-untyped-def]
        recorder = self.recorder_class(self.datastore, self.prefix)
        recorder.create_table()
        return recorder


class TestAggregateRecorder(PgRecorderCase, AggregateRecorderTestCase):
    recorder_class = PgAggregateRecorder


class TestApplicationRecorder(PgRecorderCase, ApplicationRecorderTestCase):
    recorder_class = PgApplicationRecorder
    # A sequence skips the numbers of rolled-back inserts; order is what the relay relies on.
    EXPECT_CONTIGUOUS_NOTIFICATION_IDS = False


class TestTrackingRecorder(PgRecorderCase, TrackingRecorderTestCase):
    recorder_class = PgTrackingRecorder


class TestProcessRecorder(PgRecorderCase, ProcessRecorderTestCase):
    recorder_class = PgProcessRecorder


def test_processes_starting_at_once_create_their_tables_without_colliding(pg_schema, postgres_dsn):
    """Pods start together: CREATE TABLE IF NOT EXISTS from several connections at the same
    moment collides in PostgreSQL's catalogue unless they take turns (as they now do)."""
    import threading

    from shared.db import SqlStore

    script = [
        f"CREATE TABLE IF NOT EXISTS ddl_race_{n} (id TEXT PRIMARY KEY, document TEXT NOT NULL)"
        for n in range(20)
    ]
    stores = [SqlStore(PgDatastore(postgres_dsn, pg_schema, pool_size=1)) for _ in range(6)]
    start, errors = threading.Barrier(len(stores)), []

    def migrate(store: SqlStore) -> None:
        start.wait()
        try:
            store.execute_script(script)
        except Exception as exc:  # the test reports any failure
            errors.append(type(exc).__name__)

    threads = [threading.Thread(target=migrate, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.datastore.close()
    assert errors == []
