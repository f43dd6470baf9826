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
- a hook the relay listens on, so a save is published without waiting for the next poll;
- a Logboek Dataverwerkingen record of each processing its events record (``processings``,
  ``shared.ldv``), and the trace context each event was made in, stored with the event.

Snapshots are not used: they would hold aggregate state, personal data included, in plaintext.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import fields
from datetime import date
from typing import Any, ClassVar

import greenlet
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Mapper,
    ProcessRecorder,
    Recording,
    Tracking,
    Transcoding,
)

from shared import consistency
from shared.config import Settings
from shared.contracts.envelope import ReceivedEvent, ReceivedTracking, published_name
from shared.contracts.events.retention import RecordsPurged
from shared.crypto import KeyStore, ScopeShreddedError, Vault
from shared.db import Cursor, PgDatastore, SqlStore, open_store, sqlite_path
from shared.ldv import Processing, ProcessingLog, processing_log
from shared.partitions import case_key, partition_of, stream_name
from shared.sealed import PURGED, KeyScope, Sealed
from shared.tlog import log_tables


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


class StampingMapper(Mapper):
    """The library's mapper, but each event is first stamped by ``stamp`` (with the trace
    context it was made in, ``shared.ldv``): kept in its stored state, beside its fields."""

    def __init__(self, mapper: Mapper, stamp: Callable[[Any], None]):
        super().__init__(mapper.transcoder, mapper.compressor, mapper.cipher)
        self.stamp = stamp

    def to_stored_event(self, domain_event: Any) -> Any:
        self.stamp(domain_event)
        return super().to_stored_event(domain_event)


class Batch:
    """A consumer's open batch: its transaction's cursor, the position taken per stream (the
    tracking records to write at the end), and whether the events table is locked."""

    def __init__(self, cursor: Any, datastore: PgDatastore):
        self.cursor = cursor
        self.datastore = datastore
        self.positions: dict[str, int] = {}
        #: Per stream, the position the batch started from as the consumer knew it: its
        #: tracking record moves only from there (``KetenApplication.taken_position``).
        self.started_from: dict[str, int] = {}
        #: What the batch's handlers read once for all its messages (by the application's own
        #: keys, e.g. case facts per case): dropped with the batch.
        self.memo: dict[Any, Any] = {}
        self.locked = False
        self.stored = False
        self.joined: set[Any] = set()
        self.owner = greenlet.getcurrent()
        #: Writes collected from the batch's handlers, done once at its end (``at_batch_end``).
        self.deferred: dict[str, tuple[Callable[[Cursor, list[Any]], None], list[Any]]] = {}

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
    #: The domain events (by class name) that record a processing of personal data, each
    #: logged as a Logboek Dataverwerkingen record when it is saved (``shared.ldv``).
    processings: ClassVar[Mapping[str, Processing]] = {}
    #: The kinds of event (class names) its relay appends to its verifiable log (``shared.tlog``).
    logged_events: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: Settings, env: dict[str, str] | None = None):
        self.settings = settings
        self.vault = vault_for(settings)
        self.ldv: ProcessingLog = processing_log(settings, getattr(self, "catalogue", None))
        self._save_listeners: list[Callable[[], None]] = []
        #: The stream and position of the last event from another service this process took.
        self.last_taken: tuple[str, int] | None = None
        #: The consumer's open batch, while one is open (``batch``).
        self.open_batch: Batch | None = None
        #: The open batch of agencies' commands (``batch(commands=True)``, ``shared.commands``).
        self.open_command_batch: Batch | None = None
        #: Per upstream stream, the position this process's consumer last committed or read
        #: (``taken_position``); dropped whenever a write of it fails.
        self._taken: dict[str, int] = {}
        # Snapshots would hold aggregate state, personal data included, in plaintext: never on,
        # whatever the environment says.
        super().__init__(
            env={**store_env(settings, self.name), **(env or {}), "IS_SNAPSHOTTING_ENABLED": "no"}
        )
        self.sql = SqlStore(self.recorder.datastore)  # type: ignore[attr-defined]
        self.sql.execute_script(
            [
                *self._bus_tables(),
                *(log_tables(self.name.lower()) if self.logged_events else []),
                *self.read_model_tables,
            ]
        )

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

    def construct_mapper(self) -> Mapper:
        return StampingMapper(super().construct_mapper(), self._stamp)

    def record_processing(self, processing: Processing, *subjects: str) -> None:
        """Logs a processing that records no event (a citizen reading their overview)."""
        self.ldv.record(self.name, processing, subjects)

    def _stamp(self, domain_event: Any) -> None:
        self.ldv.stamp(self.name, self.processings, domain_event)

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """The library's save; the processings its events record are logged once it committed."""
        with self.ldv.records():
            return super().save(*objs, **kwargs)

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

    def round_inbox_messages(self, domain_events: list[Any]) -> list[list[Any]]:
        """``inbox_messages`` of each of a relay round's events, in order; an application may
        read what they all need once for the round."""
        return [self.inbox_messages(domain_event) for domain_event in domain_events]

    def inbox_receipts(self, delivered: list[Any]) -> list[Any]:
        """Aggregates that record that the broker confirmed the inbox messages of
        ``delivered`` (stored events) into their agencies' inbox queues; the relay saves them
        with its position. None by default."""
        return []

    def on_save(self, listener: Callable[[], None]) -> None:
        self._save_listeners.append(listener)

    def _notify(self, recordings: list[Recording]) -> None:
        self._note_written((r.domain_event, r.notification.id) for r in recordings)
        for listener in self._save_listeners:
            listener()

    def _note_written(self, stored: Any) -> None:
        """The positions of published events just written, for the answer's consistency token
        (``shared.consistency``; nothing happens outside a worker that records)."""
        if consistency.current() is None:
            return
        consistency.note(
            consistency.Written(self.name, name, position, self.stream_of(domain_event))
            for domain_event, position in stored
            if position is not None and (name := published_name(domain_event, self.name)) is not None
        )

    def stream_of(self, domain_event: Any) -> str:
        """The stream an event's position counts in, as its consumers track it: the
        application's whole log, or its partition (``shared.partitions``)."""
        partitions = self.settings.event_partitions
        return stream_name(self.name, partition_of(case_key(domain_event), partitions), partitions)

    # -- personal data --------------------------------------------------------------------
    def seal(self, scope: KeyScope, value: Any) -> Sealed | None:
        return None if value is None else self.vault.seal(scope, value)

    def reseal(self, scope: KeyScope, value: Sealed | str | None) -> Sealed | None:
        """``value`` sealed under ``scope``: a plain text (a field of an event stored before it
        was sealed) sealed at once, a value sealed under another scope opened and sealed again.
        None when nothing is left to seal: none given, purged, or ``scope`` itself shredded."""
        if isinstance(value, Sealed):
            if value.key_id == scope.key_id:
                return value
            value = self.vault.open(value)
        if value is None or value is PURGED:
            return None
        try:
            return self.vault.seal(scope, value)
        except ScopeShreddedError:
            return None

    def open_text(self, value: Sealed | str | None) -> str | None:
        """A sealed text's plaintext (a plain one, from an event stored before it was sealed,
        as it is); None when there is none or it was purged."""
        opened = self.vault.open(value) if isinstance(value, Sealed) else value
        return None if opened is None or opened is PURGED else str(opened)

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
        open batch, if one is open), as the store says."""
        batch = self.open_batch
        if batch is not None and upstream in batch.positions and batch.includes(greenlet.getcurrent()):
            return batch.positions[upstream]
        return self.process_recorder.max_tracking_id(upstream) or 0

    def taken_position(self, upstream: str) -> int:
        """``position`` as the consumer knows it without asking the store each time: what this
        process last committed or read for ``upstream``. Safe although another process (a
        replica that had the partition before) may have moved it since: the tracking record
        is then moved only from exactly this position (``_move_tracking``), so a transaction
        built on a stale one fails as a whole (``IntegrityError``), which drops it, and the
        consumer looks again at the store. Not for answers to others (``position``)."""
        batch = self.open_batch
        in_batch = batch is not None and batch.includes(greenlet.getcurrent())
        if in_batch and batch is not None and upstream in batch.positions:
            return batch.positions[upstream]
        known = self._taken.get(upstream) if self.batches else None
        if known is None:
            known = self.process_recorder.max_tracking_id(upstream) or 0
            if self.batches:
                self._taken[upstream] = known
        if in_batch and batch is not None:
            batch.started_from.setdefault(upstream, known)
        return known

    def forget_taken(self, upstream: str | None = None) -> bool:
        """Drops what ``taken_position`` knows of ``upstream`` (of every stream: None), so the
        next look asks the store. Whether it knew anything."""
        if upstream is None:
            known = bool(self._taken)
            self._taken.clear()
            return known
        return self._taken.pop(upstream, None) is not None

    def _move_tracking(self, cur: Any, tracking: Tracking, started_from: int | None) -> None:
        """Writes the tracking record of ``tracking``: forward only, and, when the position it
        was taken from is given, only from there (one statement either way)."""
        if started_from is None:
            recorder: Any = self.recorder
            recorder._insert_tracking(cur, tracking)
            return
        table = getattr(self.recorder, "tracking_table")  # noqa: B009 - PostgreSQL's recorder only
        cur.execute(
            f"INSERT INTO {table} AS t (application_name, notification_id) VALUES (%s, %s)"
            " ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id"
            " WHERE t.notification_id = %s AND t.notification_id < EXCLUDED.notification_id"
            " RETURNING notification_id",
            (tracking.application_name, tracking.notification_id, started_from),
        )
        if cur.fetchone() is None:
            raise IntegrityError(
                f"{tracking.application_name} is not at {started_from} any more: taken elsewhere meanwhile"
            )

    def read_once_per_batch(self, key: tuple[str, Any], read: Callable[[], Any]) -> Any:
        """``read()``, once per consumer batch for ``key`` (``(kind, case_id)``), each time
        outside a batch. A handler that changes what was read drops it first
        (``forget_in_batch``)."""
        batch = self.open_batch
        if batch is None or not batch.includes(greenlet.getcurrent()):
            return read()
        if key not in batch.memo:
            batch.memo[key] = read()
        return batch.memo[key]

    def forget_in_batch(self, case_id: Any | None) -> None:
        """Drops what the open batch read of the case (of every case: None)."""
        batch = self.open_batch
        if batch is None or not batch.includes(greenlet.getcurrent()):
            return
        if case_id is None:
            batch.memo.clear()
        else:
            for key in [key for key in batch.memo if key[1] == case_id]:
                del batch.memo[key]

    @property
    def batches(self) -> bool:
        """Whether this store takes batches (PostgreSQL; SQLite takes one event at a time)."""
        return isinstance(getattr(self.recorder, "datastore", None), PgDatastore)

    @contextmanager
    def batch(self, commands: bool = False) -> Iterator[Batch]:
        """One transaction for what a consumer takes from several messages: every
        ``save_tracked`` of this green thread and those that ``join`` it goes into it, the
        events table is locked once, and each stream's tracking record is written once, at the
        end, with the last position taken. It commits as a whole or not at all; on leaving
        with an error, nothing of it stays.

        ``commands``: a batch of agencies' commands (``shared.commands``), open beside the
        events consumer's (a command may wait for that consumer to catch up: its consistency
        token), joined only by the workers its consumer admits (``Batch.join``)."""
        datastore: PgDatastore = self.recorder.datastore  # type: ignore[attr-defined]
        slot = "open_command_batch" if commands else "open_batch"
        assert getattr(self, slot) is None, "one batch at a time"
        batch: Batch | None = None
        try:
            with datastore.transaction(commit=True, joins_batch=False) as raw:
                batch = Batch(raw, datastore)
                setattr(self, slot, batch)
                datastore.join(greenlet.getcurrent(), raw)
                try:
                    yield batch
                    if batch.deferred:
                        with self.sql.transaction() as cur:  # joins the batch's transaction
                            for write, items in batch.deferred.values():
                                write(cur, items)
                    for stream, position in sorted(batch.positions.items()):
                        self._move_tracking(raw, Tracking(stream, position), batch.started_from.get(stream))
                finally:
                    setattr(self, slot, None)
                    for thread in (greenlet.getcurrent(), *batch.joined):
                        datastore.leave(thread)
        except BaseException:
            self.forget_taken()  # whatever it knew may be what made the batch fail
            raise
        self._taken.update(batch.positions)
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
        with self.ldv.records():
            self._save_tracked(tracking, *aggregates, write=write)

    def _save_tracked(
        self,
        tracking: Tracking | None,
        *aggregates: Any,
        write: Callable[[Cursor], None] | None = None,
    ) -> None:
        processing: ProcessingEvent[Any] = ProcessingEvent(tracking)
        processing.collect_events(*aggregates)
        stored = [self.mapper.to_stored_event(e) for e in processing.events]
        thread = greenlet.getcurrent()
        batch = next(
            (b for b in (self.open_batch, self.open_command_batch) if b and b.includes(thread)), None
        )
        # (None: another green thread, a use case, the relay: a transaction of its own)
        started_from: int | None = None
        if batch is not None and isinstance(tracking, ReceivedTracking):
            # Taking the event in the consumer's batch: its tracking record is written once for
            # the batch, the events table locked once.
            batch.started_from.setdefault(
                tracking.application_name, self.taken_position(tracking.application_name)
            )
            batch.positions[tracking.application_name] = tracking.notification_id
            tracking_now: Tracking | None = None
        elif isinstance(tracking, ReceivedTracking) and self.batches:
            # The consumer's own write of its position: from where it knows it stands.
            started_from = self._taken.get(tracking.application_name)
            tracking_now = None
        else:
            tracking_now = tracking
        try:
            positions = self._write_tracked(tracking, tracking_now, started_from, stored, write, batch)
        except BaseException:
            if isinstance(tracking, ReceivedTracking) and batch is None:
                self.forget_taken(tracking.application_name)
            raise
        if isinstance(tracking, ReceivedTracking):
            if batch is None and self.batches:
                self._taken[tracking.application_name] = tracking.notification_id
            self.last_taken = (tracking.application_name, tracking.notification_id)
        if stored:
            self._note_written(zip(processing.events, positions or (), strict=False))
        if stored and batch is None:
            self._notify([])

    def _write_tracked(
        self,
        tracking: Tracking | None,
        tracking_now: Tracking | None,
        started_from: int | None,
        stored: list[Any],
        write: Callable[[Cursor], None] | None,
        batch: Batch | None,
    ) -> list[int] | None:
        """The transaction of ``_save_tracked``; the positions of the events it stored."""
        recorder: Any = self.recorder
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
            if isinstance(tracking, ReceivedTracking) and batch is None and tracking_now is None:
                # Tracking first: a duplicate fails before the events table is locked.
                self._move_tracking(cur.raw, tracking, started_from)
            # The recorder's own insert, inside our transaction: tracking, then events.
            if batch is None:
                positions: list[int] | None = recorder._insert_events(cur.raw, stored, tracking=tracking_now)
            else:
                locked = batch.locked
                positions = recorder._insert_events(cur.raw, stored, tracking=tracking_now, locked=locked)
                batch.locked = batch.locked or bool(stored)
                batch.stored = batch.stored or bool(stored)
        return positions

    def at_batch_end(
        self, cur: Cursor, name: str, write: Callable[[Cursor, list[Any]], None], item: Any
    ) -> None:
        """Has ``write`` done for ``item`` with one statement for the whole consumer batch: in a
        batch, ``write`` gets every item collected under ``name`` at the batch's end, in its
        transaction (so with its tracking records, or not at all); outside one, at once. For
        writes whose order within the batch does not matter, such as the multi-row delete of
        the rows of the cases a batch of purges forgets."""
        batch = self.open_batch
        if batch is None or not batch.includes(greenlet.getcurrent()):
            write(cur, [item])
            return
        batch.deferred.setdefault(name, (write, []))[1].append(item)

    def write_tracked(self, tracking: Tracking, write: Callable[[Cursor], None]) -> None:
        """Read-model writes and the tracking record, in one transaction."""
        self.save_tracked(tracking, write=write)


__all__ = ["IntegrityError", "KetenApplication", "Tracking", "store_env", "vault_for"]
