"""An eventsourcing persistence module for PostgreSQL on psycopg2 (see ``shared.db`` for why).

Selected with ``PERSISTENCE_MODULE=shared.pgstore``. It keeps the library's semantics, checked
by the library's own recorder test cases (tests/integration/test_pgstore.py):

- ``<app>_events``: one row per event, ``notification_id`` from a sequence. Writers take
  ``LOCK TABLE ... IN EXCLUSIVE MODE`` so that notification ids become visible in commit order
  and a reader of the notification log (the relay) never skips an id that commits later. The
  same statement sends ``NOTIFY`` on the table's ``wake_channel``, delivered when the
  transaction commits: the relay listens there, so events saved by another process (a replica,
  ``keten purge``) are published without polling (``shared.relay``).
- ``<app>_tracking``: one row per upstream, the position processed up to. Recording a position
  that is not higher than the recorded one raises ``IntegrityError``: a redelivered message is
  rejected in the same transaction as its effects, so it changes nothing.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool

from shared.config import Settings
from shared.db import PgDatastore, postgres_datastore

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


class PgRecorder:
    def __init__(self, datastore: PgDatastore, prefix: str):
        if not _IDENTIFIER.match(prefix):
            raise ValueError(f"invalid table prefix {prefix!r}")
        self.datastore = datastore
        self.prefix = prefix

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cur:
            # Serialise concurrent migrations of the same schema (several pods starting at once).
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.datastore.schema,))
            for statement in self.create_table_statements():
                cur.execute(statement)

    def create_table_statements(self) -> list[str]:
        return []


def wake_channel(schema: str, events_table: str) -> str:
    return f"keten_saved_{zlib.crc32(f'{schema}.{events_table}'.encode()):08x}"


class PgAggregateRecorder(PgRecorder, AggregateRecorder):
    @property
    def events_table(self) -> str:
        return f"{self.prefix}_events"

    @property
    def wake_channel(self) -> str:
        """The LISTEN/NOTIFY channel told of every commit of new events (schemas share one
        database, so the channel names the schema too; a short digest keeps it an identifier)."""
        return wake_channel(self.datastore.schema, self.events_table)

    def create_table_statements(self) -> list[str]:
        return [
            *super().create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.events_table} ("
            " originator_id uuid NOT NULL,"
            " originator_version bigint NOT NULL,"
            " topic text NOT NULL,"
            " state bytea NOT NULL,"
            " notification_id bigserial NOT NULL,"
            " PRIMARY KEY (originator_id, originator_version))",
            f"CREATE UNIQUE INDEX IF NOT EXISTS {self.events_table}_notification_id"
            f" ON {self.events_table} (notification_id)",
        ]

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self.datastore.transaction(commit=True) as cur:
            self._insert_events(cur, stored_events, **kwargs)
        return None

    def _insert_events(self, cur: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[int]:
        if not stored_events:
            return []
        if not kwargs.get("locked"):  # a batch's transaction locks (and wakes the relay) once
            # One round trip: the lock, and the wake-up the relay gets at commit.
            cur.execute(f"LOCK TABLE {self.events_table} IN EXCLUSIVE MODE; NOTIFY {self.wake_channel}")
        rows = [(str(e.originator_id), e.originator_version, e.topic, bytes(e.state)) for e in stored_events]
        # One statement for the whole batch; RETURNING keeps the order of the VALUES list.
        placeholders = ",".join(["(%s,%s,%s,%s)"] * len(rows))
        params = [value for row in rows for value in row]
        cur.execute(
            f"INSERT INTO {self.events_table} (originator_id, originator_version, topic, state)"
            f" VALUES {placeholders} RETURNING notification_id",
            params,
        )
        return [row[0] for row in cur.fetchall()]

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        statement = (
            f"SELECT originator_id, originator_version, topic, state FROM {self.events_table}"
            " WHERE originator_id = %s"
        )
        params: list[Any] = [str(originator_id)]
        if gt is not None:
            statement += " AND originator_version > %s"
            params.append(gt)
        if lte is not None:
            statement += " AND originator_version <= %s"
            params.append(lte)
        statement += " ORDER BY originator_version " + ("DESC" if desc else "ASC")
        if limit is not None:
            statement += " LIMIT %s"
            params.append(limit)
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(statement, params)
            return [
                StoredEvent(
                    originator_id=UUID(row[0]),
                    originator_version=row[1],
                    topic=row[2],
                    state=bytes(row[3]),
                )
                for row in cur.fetchall()
            ]

    def select_events_of(self, originator_ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
        """Every event of each of many aggregates, in version order, in one round trip (by the
        primary key): what a batch that replays many aggregates reads, instead of one
        ``select_events`` each. An aggregate without events is left out."""
        found: dict[UUID, list[StoredEvent]] = {}
        if not originator_ids:
            return found
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(
                f"SELECT originator_id, originator_version, topic, state FROM {self.events_table}"
                " WHERE originator_id = ANY(%s::uuid[]) ORDER BY originator_id, originator_version",
                [[str(i) for i in originator_ids]],
            )
            for row in cur.fetchall():
                originator_id = UUID(str(row[0]))
                found.setdefault(originator_id, []).append(
                    StoredEvent(
                        originator_id=originator_id,
                        originator_version=row[1],
                        topic=row[2],
                        state=bytes(row[3]),
                    )
                )
        return found

    def select_first_events(self, originator_ids: Sequence[UUID]) -> dict[UUID, StoredEvent]:
        """The first event of each of many aggregates, in one round trip (by the primary key):
        what a listing needs of each (a request's words), without replaying any."""
        if not originator_ids:
            return {}
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(
                f"SELECT originator_id, originator_version, topic, state FROM {self.events_table}"
                " WHERE originator_id = ANY(%s::uuid[]) AND originator_version = 1",
                [[str(i) for i in originator_ids]],
            )
            return {
                UUID(str(row[0])): StoredEvent(
                    originator_id=UUID(str(row[0])),
                    originator_version=row[1],
                    topic=row[2],
                    state=bytes(row[3]),
                )
                for row in cur.fetchall()
            }


class PgApplicationRecorder(PgAggregateRecorder, ApplicationRecorder):
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self.datastore.transaction(commit=True) as cur:
            return self._insert_events(cur, stored_events, **kwargs)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        statement = (
            f"SELECT notification_id, originator_id, originator_version, topic, state"
            f" FROM {self.events_table} WHERE TRUE"
        )
        params: list[Any] = []
        if start is not None:
            statement += " AND notification_id " + (">= %s" if inclusive_of_start else "> %s")
            params.append(start)
        if stop is not None:
            statement += " AND notification_id <= %s"
            params.append(stop)
        if topics:
            statement += " AND topic = ANY(%s)"
            params.append(list(topics))
        statement += " ORDER BY notification_id LIMIT %s"
        params.append(limit)
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(statement, params)
            return [
                Notification(
                    id=row[0],
                    originator_id=UUID(row[1]),
                    originator_version=row[2],
                    topic=row[3],
                    state=bytes(row[4]),
                )
                for row in cur.fetchall()
            ]

    def max_notification_id(self) -> int | None:
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(f"SELECT MAX(notification_id) FROM {self.events_table}")
            return cur.fetchone()[0]

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        raise NotImplementedError("the relay polls the notification log; subscriptions are not used")


class PgTrackingRecorder(PgRecorder, TrackingRecorder):
    @property
    def tracking_table(self) -> str:
        return f"{self.prefix}_tracking"

    def create_table_statements(self) -> list[str]:
        return [
            *super().create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.tracking_table} ("
            " application_name text PRIMARY KEY,"
            " notification_id bigint NOT NULL)",
        ]

    def insert_tracking(self, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as cur:
            self._insert_tracking(cur, tracking)

    def _insert_tracking(self, cur: Any, tracking: Tracking) -> None:
        cur.execute(
            f"INSERT INTO {self.tracking_table} AS t (application_name, notification_id)"
            " VALUES (%s, %s) ON CONFLICT (application_name) DO UPDATE"
            " SET notification_id = EXCLUDED.notification_id"
            " WHERE t.notification_id < EXCLUDED.notification_id"
            " RETURNING notification_id",
            (tracking.application_name, tracking.notification_id),
        )
        if cur.fetchone() is None:
            raise IntegrityError(
                f"position {tracking.notification_id} of {tracking.application_name} was already processed"
            )

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.datastore.transaction(commit=False) as cur:
            cur.execute(
                f"SELECT notification_id FROM {self.tracking_table} WHERE application_name = %s",
                (application_name,),
            )
            row = cur.fetchone()
            return None if row is None else row[0]


class PgProcessRecorder(PgTrackingRecorder, PgApplicationRecorder, ProcessRecorder):
    def _insert_events(self, cur: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[int]:
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is not None:
            # Tracking first: a duplicate fails before the events table is locked.
            self._insert_tracking(cur, tracking)
        return super()._insert_events(cur, stored_events, **kwargs)


class Factory(InfrastructureFactory[PgTrackingRecorder]):
    """Reads ``DATABASE_URL``, ``DATABASE_SCHEMA`` and ``CREATE_TABLE`` from the environment."""

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        settings = Settings(
            database_url=self.env.get("DATABASE_URL"),
            database_schema=self.env.get("DATABASE_SCHEMA") or "public",
        )
        if not settings.uses_postgres:
            raise OSError("shared.pgstore needs DATABASE_URL=postgresql://...")
        self.datastore = postgres_datastore(settings)
        self.prefix = (self.env.name or "application").lower()

    def _make(self, cls: type[PgRecorder]) -> Any:
        recorder = cls(self.datastore, self.prefix)
        if strtobool(self.env.get("CREATE_TABLE") or "yes"):
            recorder.create_table()
        return recorder

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        if purpose != "events":
            raise NotImplementedError("snapshots are not used: they would store state in plaintext")
        return self._make(PgAggregateRecorder)

    def application_recorder(self) -> ApplicationRecorder:
        return self._make(PgApplicationRecorder)

    def tracking_recorder(
        self, tracking_recorder_class: type[PgTrackingRecorder] | None = None
    ) -> PgTrackingRecorder:
        topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
        cls = tracking_recorder_class or (resolve_topic(topic) if topic else PgTrackingRecorder)
        return self._make(cls)

    def process_recorder(self) -> ProcessRecorder:
        return self._make(PgProcessRecorder)

    def close(self) -> None:
        # The pool is shared by every application of the process; it closes with the process.
        pass
