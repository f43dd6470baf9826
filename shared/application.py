"""The base of every service's eventsourcing Application.

What it adds to the library's ``Application``:
- its store from ``Settings``: SQLite file under ``var/`` (embedded), in-memory SQLite (unit
  tests) or PostgreSQL (``shared.pgstore``), tables prefixed by the application name;
- a process recorder, so that what a service does in reaction to another service's event is
  saved with a tracking record in one transaction (``save_tracked``, ``write_tracked``), and
  with it a record of which event was taken at that position (``<app>_received``), so that a
  later message that claims the position with other content is caught as a conflict;
- the relay's chain of positions (``<app>_relay_chain``): per stream and kind of event, the
  position of the latest one published, stored with the relay's position;
- transcodings for ``Sealed`` personal values and dates;
- a hook the relay listens on, so a save is published without waiting for the next poll.

Snapshots are not used: they would hold aggregate state, personal data included, in plaintext.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import date
from typing import Any, ClassVar

import greenlet
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    ProcessRecorder,
    Recording,
    Tracking,
    Transcoding,
)

from shared.config import Settings
from shared.contracts.envelope import ReceivedEvent, ReceivedTracking
from shared.contracts.events.retention import RecordsPurged
from shared.crypto import KeyStore, Vault
from shared.db import Cursor, PgDatastore, SqlStore, open_store, sqlite_path
from shared.sealed import KeyScope, Sealed


class SealedAsDict(Transcoding):
    type = Sealed
    name = "sealed"

    def encode(self, obj: Sealed) -> dict[str, str]:
        return {"k": obj.key_id, "c": base64.b64encode(obj.ciphertext).decode()}

    def decode(self, data: dict[str, str]) -> Sealed:
        return Sealed(data["k"], base64.b64decode(data["c"]))


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


def value_transcoding(cls: type) -> Transcoding:
    """A transcoding for a frozen dataclass value object of the domain (sequences as tuples)."""

    class ValueTranscoding(Transcoding):
        type = cls
        name = cls.__name__

        def encode(self, obj: Any) -> dict[str, Any]:
            return {f.name: getattr(obj, f.name) for f in fields(obj)}

        def decode(self, data: dict[str, Any]) -> Any:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    return ValueTranscoding()


def store_env(settings: Settings, name: str) -> dict[str, str]:
    """The eventsourcing environment that puts application ``name`` in the configured store."""
    if settings.uses_postgres:
        assert settings.database_url
        return {
            "PERSISTENCE_MODULE": "shared.pgstore",
            "DATABASE_URL": settings.database_url,
            "DATABASE_SCHEMA": settings.database_schema,
        }
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": sqlite_path(settings, name),
        "SQLITE_LOCK_TIMEOUT": "10",
    }


_vaults: dict[tuple[Any, ...], Vault] = {}
_vaults_lock = threading.Lock()


def vault_for(settings: Settings) -> Vault:
    """The process's vault for these settings (one key store connection, one key cache)."""
    key = (
        settings.database_url,
        settings.database_schema,
        settings.var_dir,
        settings.master_key,
        settings.previous_master_key,
    )
    with _vaults_lock:
        if key not in _vaults:
            keys = KeyStore(open_store(settings, "keys"), settings.master_key, settings.previous_master_key)
            keys.create_table()
            _vaults[key] = Vault(keys)
        return _vaults[key]


class Batch:
    """A consumer's open batch: its transaction's cursor, the position taken per stream (the
    tracking records to write at the end), and whether the events table is locked."""

    def __init__(self, cursor: Any, datastore: PgDatastore):
        self.cursor = cursor
        self.datastore = datastore
        self.positions: dict[str, int] = {}
        self.locked = False
        self.stored = False
        self.joined: set[Any] = set()
        self.owner = greenlet.getcurrent()

    def join(self, thread: Any) -> None:
        """Lets another green thread (a worker running a handler) work inside the batch."""
        self.joined.add(thread)
        self.datastore.join(thread, self.cursor)

    def leave(self, thread: Any) -> None:
        self.joined.discard(thread)
        self.datastore.leave(thread)

    def includes(self, thread: Any) -> bool:
        return thread is self.owner or thread in self.joined


class KetenApplication(Application):
    """An eventsourcing Application in the platform's store, with the platform's vault."""

    #: The domain's value objects that appear in events (frozen dataclasses).
    value_types: ClassVar[tuple[type, ...]] = ()
    #: CREATE TABLE statements of the application's read models (``?``-style portable SQL).
    read_model_tables: ClassVar[list[str]] = []

    def __init__(self, settings: Settings, env: dict[str, str] | None = None):
        self.settings = settings
        self.vault = vault_for(settings)
        self._save_listeners: list[Callable[[], None]] = []
        #: The stream and position of the last event from another service this process took.
        self.last_taken: tuple[str, int] | None = None
        #: The consumer's open batch, while one is open (``batch``).
        self.open_batch: Batch | None = None
        # Snapshots would hold aggregate state, personal data included, in plaintext: never on,
        # whatever the environment says.
        super().__init__(
            env={**store_env(settings, self.name), **(env or {}), "IS_SNAPSHOTTING_ENABLED": "no"}
        )
        self.sql = SqlStore(self.recorder.datastore)  # type: ignore[attr-defined]
        self.sql.execute_script([*self._bus_tables(), *self.read_model_tables])

    # -- what the bus needs of every store --------------------------------------------------
    @property
    def received_table(self) -> str:
        return f"{self.name.lower()}_received"

    @property
    def relay_chain_table(self) -> str:
        return f"{self.name.lower()}_relay_chain"

    def _bus_tables(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.received_table} ("
            " stream TEXT NOT NULL, position BIGINT NOT NULL, event TEXT NOT NULL, message_id TEXT NOT NULL,"
            " digest TEXT NOT NULL, outcome TEXT NOT NULL, PRIMARY KEY (stream, position))",
            f"CREATE TABLE IF NOT EXISTS {self.relay_chain_table} ("
            " stream TEXT NOT NULL, kind TEXT NOT NULL, position BIGINT NOT NULL,"
            " PRIMARY KEY (stream, kind))",
        ]

    def received(self, stream: str, position: int) -> tuple[str, str, str] | None:
        """``(event name, message_id, digest)`` of the event taken at ``position`` of ``stream``."""
        with self.sql.transaction(commit=False) as cur:
            row = cur.execute(
                f"SELECT event, message_id, digest FROM {self.received_table}"
                " WHERE stream = ? AND position = ?",
                (stream, position),
            ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def received_kinds(self, stream: str, after: int, upto: int) -> list[str]:
        """The kinds of the events taken in ``stream`` at positions in ``(after, upto]``."""
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT event FROM {self.received_table}"
                " WHERE stream = ? AND position > ? AND position <= ?",
                (stream, after, upto),
            ).fetchall()
        return [row[0] for row in rows]

    def first_received(self, stream: str) -> int | None:
        """The first position of ``stream`` taken with a record of what it was (positions
        below it were taken before such records were kept)."""
        with self.sql.transaction(commit=False) as cur:
            row = cur.execute(
                f"SELECT MIN(position) FROM {self.received_table} WHERE stream = ?", (stream,)
            ).fetchone()
        return row[0] if row and row[0] is not None else None

    def relay_chain(self, stream: str) -> dict[str, int]:
        """Per kind of event, the position of the latest one the relay published in ``stream``."""
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT kind, position FROM {self.relay_chain_table} WHERE stream = ?", (stream,)
            ).fetchall()
        return {row[0]: row[1] for row in rows}

    def write_relay_chain(self, cur: Cursor, stream: str, moved: dict[str, int]) -> None:
        """Moves the chain's head of each kind in ``moved`` (inside the relay's transaction)."""
        if moved:
            cur.executemany(
                f"INSERT INTO {self.relay_chain_table} (stream, kind, position) VALUES (?, ?, ?)"
                " ON CONFLICT (stream, kind) DO UPDATE SET position = excluded.position",
                [(stream, kind, position) for kind, position in sorted(moved.items())],
            )

    # -- infrastructure -------------------------------------------------------------------
    def construct_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(SealedAsDict())
        transcoder.register(DateAsISO())
        for cls in self.value_types:
            transcoder.register(value_transcoding(cls))

    def inbox_messages(self, domain_event: Any) -> list[Any]:
        """What a stored event makes the relay address to agencies' inboxes (``OutgoingMessage``
        for ``keten.inbox``); none by default. Published with the event, under the same outbox
        guarantee: at least once, in log order."""
        return []

    def on_save(self, listener: Callable[[], None]) -> None:
        self._save_listeners.append(listener)

    def _notify(self, recordings: list[Recording]) -> None:
        for listener in self._save_listeners:
            listener()

    # -- personal data --------------------------------------------------------------------
    def seal(self, scope: KeyScope, value: Any) -> Sealed | None:
        return None if value is None else self.vault.seal(scope, value)

    def forget_keys(self, purge: ReceivedEvent[RecordsPurged]) -> None:
        """Drops the keys a ``RecordsPurged`` event names from this process's key cache, so that
        nothing it cached before the purge opens or seals the scope again."""
        data = purge.data
        self.vault.forget(data.case_id, None if data.complete else data.subject)

    # -- exactly-once processing of other services' events --------------------------------
    @property
    def process_recorder(self) -> ProcessRecorder:
        assert isinstance(self.recorder, ProcessRecorder)
        return self.recorder

    def position(self, upstream: str) -> int:
        """How far this application has processed ``upstream``'s notification log (in the
        open batch, if one is open)."""
        batch = self.open_batch
        if batch is not None and upstream in batch.positions and batch.includes(greenlet.getcurrent()):
            return batch.positions[upstream]
        return self.process_recorder.max_tracking_id(upstream) or 0

    @property
    def batches(self) -> bool:
        """Whether this store takes batches (PostgreSQL; SQLite takes one event at a time)."""
        return isinstance(getattr(self.recorder, "datastore", None), PgDatastore)

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """One transaction for what a consumer takes from several messages: every
        ``save_tracked`` of this green thread and those that ``join`` it goes into it, the
        events table is locked once, and each stream's tracking record is written once, at the
        end, with the last position taken. It commits as a whole or not at all; on leaving
        with an error, nothing of it stays."""
        datastore: PgDatastore = self.recorder.datastore  # type: ignore[attr-defined]
        assert self.open_batch is None, "one batch at a time"
        recorder: Any = self.recorder
        with datastore.transaction(commit=True, joins_batch=False) as raw:
            batch = Batch(raw, datastore)
            self.open_batch = batch
            datastore.join(greenlet.getcurrent(), raw)
            try:
                yield batch
                for stream, position in sorted(batch.positions.items()):
                    recorder._insert_tracking(raw, Tracking(stream, position))
            finally:
                self.open_batch = None
                for thread in (greenlet.getcurrent(), *batch.joined):
                    datastore.leave(thread)
        if batch.stored:
            self._notify([])

    def save_tracked(
        self,
        tracking: Tracking | None,
        *aggregates: Any,
        write: Callable[[Cursor], None] | None = None,
    ) -> None:
        """Saves new events, read-model writes and the tracking record in one transaction.

        What a service does in reaction to one event from ``tracking.application_name`` is
        recorded all at once or not at all; a redelivered event fails on its tracking record
        (``IntegrityError``) and changes nothing. Without ``tracking`` (a use case of the
        service's own), the events and the read-model writes still commit together; a
        concurrent change of the same aggregate fails as a whole with ``IntegrityError``.
        """
        processing: ProcessingEvent[Any] = ProcessingEvent(tracking)
        processing.collect_events(*aggregates)
        stored = [self.mapper.to_stored_event(e) for e in processing.events]
        recorder: Any = self.recorder
        batch = self.open_batch
        if batch is not None and not batch.includes(greenlet.getcurrent()):
            batch = None  # another green thread (a use case, the relay): a transaction of its own
        if batch is not None and isinstance(tracking, ReceivedTracking):
            # Taking the event in the consumer's batch: its tracking record is written once for
            # the batch, the events table locked once.
            batch.positions[tracking.application_name] = tracking.notification_id
            tracking_now: Tracking | None = None
        else:
            tracking_now = tracking
        with self.sql.transaction() as cur:
            if write is not None:
                write(cur)
            if isinstance(tracking, ReceivedTracking):
                # A redelivered event fails here or on the tracking record: either way, as a whole.
                cur.execute(
                    f"INSERT INTO {self.received_table}"
                    " (stream, position, event, message_id, digest, outcome) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        tracking.application_name,
                        tracking.notification_id,
                        tracking.event,
                        tracking.message_id,
                        tracking.digest,
                        tracking.outcome,
                    ),
                )
            # The recorder's own insert, inside our transaction: tracking, then events.
            if batch is None:
                recorder._insert_events(cur.raw, stored, tracking=tracking_now)
            else:
                recorder._insert_events(cur.raw, stored, tracking=tracking_now, locked=batch.locked)
                batch.locked = batch.locked or bool(stored)
                batch.stored = batch.stored or bool(stored)
        if isinstance(tracking, ReceivedTracking):
            self.last_taken = (tracking.application_name, tracking.notification_id)
        if stored and batch is None:
            self._notify([])

    def write_tracked(self, tracking: Tracking, write: Callable[[Cursor], None]) -> None:
        """Read-model writes and the tracking record, in one transaction."""
        self.save_tracked(tracking, write=write)


__all__ = ["IntegrityError", "KetenApplication", "Tracking", "store_env", "vault_for"]
