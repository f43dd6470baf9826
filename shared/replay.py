"""Refusing replayed requests: a signed message counts once, and only while it is fresh.

A signature proves who made a message, not that it is new: a copy taken off the wire (or out of
a log, a proxy, a dead-letter queue) would verify forever. So every signed message also carries
the time it was made (``created``, inside what is signed) and an id of its own (the AMQP
``message_id``; an HTTP request's ``nonce``). A receiver refuses it

- when ``created`` is older than the window, or further in the future than the allowed clock
  skew (``stale``), and
- when its id was seen before within the window (``replayed``).

The ids seen are kept in the platform's database (table ``keten_seen_messages``), so the
memory survives restarts and is shared by every replica; a row is needed only until its
message would be stale anyway, and expired rows are deleted as new ones come in.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.config import MEMORY_DATABASE_URL, Settings
from shared.db import SqlStore, open_store

#: How far in the future a sender's clock may be.
CLOCK_SKEW = timedelta(seconds=60)
#: Seconds between deletions of expired rows (per process).
SWEEP_INTERVAL = 60.0


class SeenMessages:
    """The ids of signed messages seen within the freshness window."""

    def __init__(self, store: SqlStore, window: timedelta):
        self.store = store
        self.window = window
        self._swept = 0.0
        store.execute_script(
            [
                "CREATE TABLE IF NOT EXISTS keten_seen_messages ("
                " scope TEXT NOT NULL,"
                " message_id TEXT NOT NULL,"
                " expires_at TEXT NOT NULL,"
                " PRIMARY KEY (scope, message_id))",
                "CREATE INDEX IF NOT EXISTS keten_seen_messages_expiry ON keten_seen_messages (expires_at)",
            ]
        )

    @classmethod
    def for_settings(cls, settings: Settings) -> SeenMessages:
        """The process's store for these settings (its table created once per process)."""
        window = timedelta(seconds=settings.replay_window)
        if settings.database_url == MEMORY_DATABASE_URL:
            return cls(open_store(settings, "replay"), window)
        key = (settings.database_url, settings.database_schema, settings.var_dir, settings.replay_window)
        with _lock:
            if key not in _stores or getattr(_stores[key].store.datastore, "_closed", False):
                _stores[key] = cls(open_store(settings, "replay"), window)
            return _stores[key]

    def is_fresh(self, created: datetime, now: datetime | None = None) -> bool:
        """Whether a message made at ``created`` may still be taken."""
        now = now or datetime.now(UTC)
        return now - self.window <= created <= now + CLOCK_SKEW

    def first_sighting(
        self, scope: str, message_id: str, created: datetime, now: datetime | None = None
    ) -> bool:
        """Records ``message_id`` as seen in ``scope`` (an agency, say); False if it was seen
        before within the window. Call it only for a message whose signature verified and that
        is fresh: an unverified message must not use up an id."""
        now = now or datetime.now(UTC)
        expires = max(created, now) + self.window + CLOCK_SKEW
        with self.store.transaction() as cur:
            cur.execute(
                "INSERT INTO keten_seen_messages (scope, message_id, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (scope, message_id) DO NOTHING",
                (scope, message_id, _text(expires)),
            )
            first = cur.rowcount == 1
            if not first:
                # Seen, but perhaps so long ago that its row outlived its window: then it counts
                # as new (the row is renewed), since its created time was checked to be fresh.
                cur.execute(
                    "UPDATE keten_seen_messages SET expires_at = ?"
                    " WHERE scope = ? AND message_id = ? AND expires_at < ?",
                    (_text(expires), scope, message_id, _text(now)),
                )
                first = cur.rowcount == 1
        self._sweep(now)
        return first

    def _sweep(self, now: datetime) -> None:
        if time.monotonic() - self._swept < SWEEP_INTERVAL:
            return
        self._swept = time.monotonic()
        with self.store.transaction() as cur:
            cur.execute("DELETE FROM keten_seen_messages WHERE expires_at < ?", (_text(now),))


def parse_created(value: Any) -> datetime | None:
    """A ``created`` time as senders write it: ISO-8601 with a time zone; None if it is not."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _text(moment: datetime) -> str:
    # One fixed format, so that text order is time order.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_stores: dict[tuple[Any, ...], SeenMessages] = {}
_lock = threading.Lock()
