"""Ids remembered until they expire, in the platform store: the nonces of signed HTTP requests
(a request seen once is refused when it comes again), citizens' sessions ended at logout, and
whatever else must be recognised as "seen before" for a while.

Table ``keten_seen_ids`` in the platform store (PostgreSQL, or ``var/platform.sqlite`` on the
embedded default): it survives restarts and every replica of the gateway (or of any service)
sees the same rows, so a request replayed to another replica is refused too. Each id lives in a
scope (``http-nonce:<key id>``, ``citizen-session-ended``, ...) and is kept until its expiry;
expired rows are deleted now and then by whoever writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.config import MEMORY_DATABASE_URL, Settings
from shared.db import Cursor, SqlStore, open_store

#: Seconds between two deletions of expired rows by one process.
PURGE_EVERY = 60.0


class SeenIds:
    """Remembers ids per scope until they expire; ``first_sighting`` tells new from seen."""

    def __init__(self, store: SqlStore):
        self.store = store
        self._last_purge = 0.0
        store.execute_script(
            [
                "CREATE TABLE IF NOT EXISTS keten_seen_ids ("
                " scope TEXT NOT NULL,"
                " id TEXT NOT NULL,"
                " expires_at DOUBLE PRECISION NOT NULL,"
                " PRIMARY KEY (scope, id))",
                "CREATE INDEX IF NOT EXISTS keten_seen_ids_expiry ON keten_seen_ids (expires_at)",
            ]
        )

    @classmethod
    def for_settings(cls, settings: Settings) -> SeenIds:
        """The process's store for these settings (its table is created once per process)."""
        if settings.database_url == MEMORY_DATABASE_URL:
            return cls(open_store(settings, "platform"))  # unit tests: one each
        key = (settings.database_url, settings.database_schema, settings.var_dir)
        with _lock:
            if key not in _stores or _stores[key].closed:
                _stores[key] = cls(open_store(settings, "platform"))
            return _stores[key]

    @property
    def closed(self) -> bool:
        return bool(getattr(self.store.datastore, "_closed", False))

    def first_sighting(self, scope: str, id_: str, until: datetime | float) -> bool:
        """Remembers ``id_`` in ``scope`` until ``until``; ``True`` if it was not remembered
        yet (or only expired), ``False`` if it was: then it is a repeat.

        One statement, so two replicas seeing the same id at once cannot both call it new.
        """
        now = time.time()
        expires = _timestamp(until)
        with self.store.transaction() as cur:
            cur.execute(
                "INSERT INTO keten_seen_ids (scope, id, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (scope, id) DO UPDATE SET expires_at = excluded.expires_at"
                " WHERE keten_seen_ids.expires_at < ?",
                (scope, id_, expires, now),
            )
            new = cur.rowcount == 1
        self._purge_now_and_then(now)
        return new

    def first_sightings(self, cur: Cursor, sightings: Sequence[Sighting]) -> set[tuple[str, str]]:
        """Remembers every ``(scope, id)`` of ``sightings`` in one statement, inside the caller's
        transaction ``cur`` (a batch of commands: its ids are remembered if and only if what
        it did commits); the ones not remembered yet (or only expired), each once.

        An id twice in ``sightings`` is first seen once (its first occurrence is the caller's to
        pick); rows go in a fixed order, so two batches that share ids wait, not deadlock.
        """
        now = time.time()
        latest: dict[tuple[str, str], float] = {}
        for sighting in sightings:
            key = (sighting.scope, sighting.id)
            latest[key] = max(latest.get(key, 0.0), _timestamp(sighting.until))
        if not latest:
            return set()
        rows = sorted(latest.items())
        new = cur.execute(
            "INSERT INTO keten_seen_ids (scope, id, expires_at) VALUES "
            + ", ".join("(?, ?, ?)" for _ in rows)
            + " ON CONFLICT (scope, id) DO UPDATE SET expires_at = excluded.expires_at"
            " WHERE keten_seen_ids.expires_at < ? RETURNING scope, id",
            [*(value for (scope, id_), until in rows for value in (scope, id_, until)), now],
        ).fetchall()
        return {(row[0], row[1]) for row in new}

    def purge_now_and_then(self) -> None:
        """Deletes expired rows if it is time (outside any batch: it waits for their locks)."""
        self._purge_now_and_then(time.time())

    def remember(self, scope: str, id_: str, until: datetime | float) -> None:
        self.first_sighting(scope, id_, until)

    def seen(self, scope: str, id_: str) -> bool:
        """Whether ``id_`` is remembered in ``scope`` and has not expired."""
        with self.store.transaction(commit=False) as cur:
            row = cur.execute(
                "SELECT 1 FROM keten_seen_ids WHERE scope = ? AND id = ? AND expires_at >= ?",
                (scope, id_, time.time()),
            ).fetchone()
        return row is not None

    def forget_expired(self, now: float | None = None) -> int:
        """Deletes the rows whose time is up; returns how many."""
        with self.store.transaction() as cur:
            cur.execute("DELETE FROM keten_seen_ids WHERE expires_at < ?", (now or time.time(),))
            return cur.rowcount

    def _purge_now_and_then(self, now: float) -> None:
        if now - self._last_purge >= PURGE_EVERY:
            self._last_purge = now
            self.forget_expired(now)


@dataclass(frozen=True)
class Sighting:
    """An id seen in a scope, to be remembered until ``until``."""

    scope: str
    id: str
    until: datetime | float


def _timestamp(until: datetime | float) -> float:
    return until.timestamp() if isinstance(until, datetime) else float(until)


_stores: dict[tuple[Any, ...], SeenIds] = {}
_lock = threading.Lock()
