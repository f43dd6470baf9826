"""Crypto-shredding: per-case and per-subject data keys, wrapped by the master key.

Every personal value is encrypted (AES-256-GCM) with the data key of its ``KeyScope``; the key is
stored wrapped by the platform's master key in the key store (``keten_keys``). Purging a case
deletes its keys and leaves a tombstone, so nothing can be sealed under that scope again and
every stored copy of the data reads as ``PURGED``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.db import SqlStore
from shared.sealed import PURGED, KeyScope, Purged, Sealed

NONCE_BYTES = 12
#: Keys destroyed per statement in a batch purge (SQLite allows 999 parameters in one).
SHRED_CHUNK = 500


class ScopeShreddedError(Exception):
    """The scope's key was shredded: its records were purged and cannot gain new personal data."""


def master_key_id(master_key: bytes) -> str:
    """The id stored beside each wrapped key: which master key wraps it (not the key itself)."""
    return hashlib.sha256(b"keten-master-key-id" + master_key).hexdigest()[:16]


class KeyStore:
    """Wrapped data keys in SQL (``keten_keys``), one row per scope, a tombstone once shredded.

    Each row records the id of the master key that wraps it. During a rotation the previous
    master key still opens the rows wrapped under it, until ``rewrap`` has moved them all to
    the current one (``keten rewrap-keys``).
    """

    def __init__(self, store: SqlStore, master_key: bytes, previous_master_key: bytes | None = None):
        self.store = store
        self.master = AESGCM(hashlib.sha256(master_key).digest())
        self.master_key_id = master_key_id(master_key)
        self._masters = {self.master_key_id: self.master}
        if previous_master_key is not None:
            self._masters.setdefault(
                master_key_id(previous_master_key), AESGCM(hashlib.sha256(previous_master_key).digest())
            )

    def create_table(self) -> None:
        self.store.execute_script(
            [
                "CREATE TABLE IF NOT EXISTS keten_keys ("
                " key_id TEXT PRIMARY KEY,"
                " case_id TEXT NOT NULL,"
                f" wrapped_key {self.store.binary_type},"  # NULL once shredded
                " master_key_id TEXT,"
                " created_at TEXT NOT NULL,"
                " shredded_at TEXT)",
                "CREATE INDEX IF NOT EXISTS keten_keys_case ON keten_keys (case_id)",
            ]
        )

    def load(self, key_id: str) -> bytes | Purged | None:
        """The data key, None if there is none yet, PURGED if it was shredded."""
        with self.store.transaction(commit=False) as cur:
            row = cur.execute(
                "SELECT wrapped_key, master_key_id FROM keten_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        if row is None:
            return None
        if row[0] is None:
            return PURGED
        return self._unwrap(key_id, bytes(row[0]), row[1])

    def load_or_create(self, scope: KeyScope) -> bytes:
        key_id = scope.key_id
        found = self.load(key_id)
        if isinstance(found, bytes):
            return found
        if found is PURGED or (scope.subject is not None and self.is_case_shredded(scope.case_id)):
            raise ScopeShreddedError(f"records of case {scope.case_id} were purged")
        key = AESGCM.generate_key(bit_length=256)
        with self.store.transaction() as cur:
            cur.execute(
                "INSERT INTO keten_keys (key_id, case_id, wrapped_key, master_key_id, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING",
                (key_id, str(scope.case_id), self._wrap(key_id, key), self.master_key_id, _now()),
            )
        # Another process may have won the race: whatever is stored is the key.
        stored = self.load(key_id)
        if not isinstance(stored, bytes):
            raise ScopeShreddedError(f"records of case {scope.case_id} were purged")
        return stored

    def shred(self, case_id: UUID, subject: str | None = None) -> int:
        """Deletes the case's keys (or one subject's key); returns how many were live."""
        if subject is not None:
            return self.shred_scope(KeyScope(case_id, subject))
        with self.store.transaction() as cur:
            cur.execute(
                "UPDATE keten_keys SET wrapped_key = NULL, shredded_at = ?"
                " WHERE case_id = ? AND wrapped_key IS NOT NULL",
                (_now(), str(case_id)),
            )
            shredded = cur.rowcount
            # A tombstone for the case scope even if nothing was ever sealed under it.
            self._tombstone(cur, KeyScope(case_id))
        return shredded

    def shred_many(self, scopes: Sequence[KeyScope], cases: Sequence[UUID] = ()) -> int:
        """Deletes the keys of many ``scopes`` and every key of ``cases`` at once (a batch
        purge), with their tombstones, in one transaction; returns how many were live."""
        now = _now()
        shredded = 0
        with self.store.transaction() as cur:
            by_column = (("key_id", [s.key_id for s in scopes]), ("case_id", [str(c) for c in cases]))
            for column, values in by_column:
                for start in range(0, len(values), SHRED_CHUNK):
                    chunk = values[start : start + SHRED_CHUNK]
                    cur.execute(
                        "UPDATE keten_keys SET wrapped_key = NULL, shredded_at = ?"
                        f" WHERE {column} IN ({', '.join('?' * len(chunk))}) AND wrapped_key IS NOT NULL",
                        (now, *chunk),
                    )
                    shredded += cur.rowcount
            tombstones = [*scopes, *(KeyScope(case_id) for case_id in cases)]
            for start in range(0, len(tombstones), SHRED_CHUNK):
                buried = tombstones[start : start + SHRED_CHUNK]
                cur.execute(
                    "INSERT INTO keten_keys (key_id, case_id, wrapped_key, created_at, shredded_at)"
                    f" VALUES {', '.join(['(?, ?, NULL, ?, ?)'] * len(buried))}"
                    " ON CONFLICT (key_id) DO NOTHING",
                    [value for scope in buried for value in (scope.key_id, str(scope.case_id), now, now)],
                )
        return shredded

    def shred_scope(self, scope: KeyScope) -> int:
        """Deletes exactly the key of ``scope`` (1 if it was live, else 0) and leaves its tombstone.

        The case scope alone holds the case's own free text; its subjects' keys stay until their
        own records are due, but no new subject key can be made once the case scope is shredded.
        Idempotent: shredding a shredded scope changes nothing.
        """
        with self.store.transaction() as cur:
            cur.execute(
                "UPDATE keten_keys SET wrapped_key = NULL, shredded_at = ?"
                " WHERE key_id = ? AND wrapped_key IS NOT NULL",
                (_now(), scope.key_id),
            )
            shredded = cur.rowcount
            self._tombstone(cur, scope)
        return shredded

    def live_keys(self, case_id: UUID) -> list[str]:
        """The key ids of the case that still open its data (none once it is purged)."""
        with self.store.transaction(commit=False) as cur:
            rows = cur.execute(
                "SELECT key_id FROM keten_keys WHERE case_id = ? AND wrapped_key IS NOT NULL ORDER BY key_id",
                (str(case_id),),
            ).fetchall()
        return [str(row[0]) for row in rows]

    @staticmethod
    def _tombstone(cur: Any, scope: KeyScope) -> None:
        cur.execute(
            "INSERT INTO keten_keys (key_id, case_id, wrapped_key, created_at, shredded_at)"
            " VALUES (?, ?, NULL, ?, ?) ON CONFLICT (key_id) DO NOTHING",
            (scope.key_id, str(scope.case_id), _now(), _now()),
        )

    def is_case_shredded(self, case_id: UUID) -> bool:
        return self.load(str(case_id)) is PURGED

    def _wrap(self, key_id: str, key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self.master.encrypt(nonce, key, key_id.encode())

    def count_by_master_key(self) -> dict[str, int]:
        """Live (not shredded) data keys per id of the master key that wraps them."""
        with self.store.transaction(commit=False) as cur:
            rows = cur.execute(
                "SELECT master_key_id, COUNT(*) FROM keten_keys WHERE wrapped_key IS NOT NULL"
                " GROUP BY master_key_id"
            ).fetchall()
        return {str(row[0]): int(row[1]) for row in rows}

    def rewrap(self, batch_size: int = 500) -> int:
        """Wraps every live data key that is not under the current master key under it, a batch
        per transaction; safe to interrupt and run again. Returns how many it re-wrapped."""
        done = 0
        while True:
            with self.store.transaction() as cur:
                rows = cur.execute(
                    "SELECT key_id, wrapped_key, master_key_id FROM keten_keys"
                    " WHERE wrapped_key IS NOT NULL AND (master_key_id IS NULL OR master_key_id <> ?)"
                    " ORDER BY key_id LIMIT ?",
                    (self.master_key_id, batch_size),
                ).fetchall()
                for key_id, wrapped, wrapped_under in rows:
                    key = self._unwrap(key_id, bytes(wrapped), wrapped_under)
                    # Only a row still live and still under the old key: a purge in between wins.
                    cur.execute(
                        "UPDATE keten_keys SET wrapped_key = ?, master_key_id = ?"
                        " WHERE key_id = ? AND wrapped_key IS NOT NULL",
                        (self._wrap(key_id, key), self.master_key_id, key_id),
                    )
            done += len(rows)
            if len(rows) < batch_size:
                return done

    def _unwrap(self, key_id: str, wrapped: bytes, wrapped_under: str | None = None) -> bytes:
        masters = [self._masters[wrapped_under]] if wrapped_under in self._masters else []
        masters += [m for m in self._masters.values() if m not in masters]
        for master in masters:
            try:
                return master.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], key_id.encode())
            except InvalidTag:
                continue
        raise RuntimeError(
            "a data key does not open with KETEN_MASTER_KEY (nor KETEN_MASTER_KEY_PREVIOUS):"
            " wrong master key configured?"
        )


class Vault:
    """Seals and opens personal values; keeps a bounded cache of unwrapped keys."""

    def __init__(self, keys: KeyStore, cache_size: int = 10_000):
        self.keys = keys
        self.cache_size = cache_size
        self._cache: OrderedDict[str, AESGCM] = OrderedDict()
        #: The cached key ids of each case: ``forget`` of a purge finds them without a scan.
        self._cached_of_case: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def seal(self, scope: KeyScope, value: Any) -> Sealed:
        aead = self._cipher(scope.key_id, create=scope)
        assert aead is not None
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return Sealed(scope.key_id, nonce + aead.encrypt(nonce, plaintext, scope.key_id.encode()))

    def open(self, sealed: Sealed | None) -> Any:
        """The plaintext value, or PURGED once the scope's key was shredded."""
        if sealed is None:
            return None
        aead = self._cipher(sealed.key_id, create=None)
        if aead is None:
            return PURGED
        data = sealed.ciphertext
        try:
            plaintext = aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], sealed.key_id.encode())
        except InvalidTag:
            return PURGED
        return json.loads(plaintext)

    def shred(self, case_id: UUID, subject: str | None = None) -> int:
        count = self.keys.shred(case_id, subject)
        self.forget(case_id, subject)
        return count

    def shred_scope(self, scope: KeyScope) -> int:
        count = self.keys.shred_scope(scope)
        self.forget(scope.case_id, scope.subject)
        return count

    def shred_many(self, scopes: Sequence[KeyScope], cases: Sequence[UUID] = ()) -> int:
        count = self.keys.shred_many(scopes, cases)
        for scope in scopes:
            self.forget(scope.case_id, scope.subject)
        for case_id in cases:
            self.forget(case_id)
        return count

    def forget(self, case_id: UUID, subject: str | None = None) -> None:
        """Drops cached keys (also called when another process reports a purge)."""
        with self._lock:
            cached = self._cached_of_case.get(str(case_id), set())
            gone = list(cached) if subject is None else [KeyScope(case_id, subject).key_id]
            for key_id in gone:
                if self._cache.pop(key_id, None) is not None:
                    self._uncache(key_id)

    def _cipher(self, key_id: str, create: KeyScope | None) -> AESGCM | None:
        with self._lock:
            aead = self._cache.get(key_id)
            if aead is not None:
                self._cache.move_to_end(key_id)
                return aead
        if create is not None:
            key = self.keys.load_or_create(create)
        else:
            loaded = self.keys.load(key_id)
            if not isinstance(loaded, bytes):
                return None
            key = loaded
        aead = AESGCM(key)
        with self._lock:
            self._cache[key_id] = aead
            self._cached_of_case.setdefault(key_id.partition("/")[0], set()).add(key_id)
            while len(self._cache) > self.cache_size:
                self._uncache(self._cache.popitem(last=False)[0])
        return aead

    def _uncache(self, key_id: str) -> None:
        """Drops a key id that left the cache from its case's set (under ``_lock``)."""
        case = key_id.partition("/")[0]
        cached = self._cached_of_case.get(case)
        if cached is not None:
            cached.discard(key_id)
            if not cached:
                del self._cached_of_case[case]


def _now() -> str:
    return datetime.now(UTC).isoformat()
