"""How often a citizen may try to log in: per client address and per citizen, in a sliding
window, counted in the platform store so that every gateway replica counts the same attempts
and a restart forgets none.

The stand-in login believes any valid BSN, so guessing BSNs must be slow; with a real identity
provider the same limits slow down password guessing against one citizen. Neither the address
nor the citizen is stored as such: each bucket is a keyed hash (HMAC with a key derived from the
master key) of the address or of the citizen's pseudonym, so the table cannot be joined with
the events, and never holds a BSN.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass

from shared.db import SqlStore
from shared.errors import KetenError


class TooManyLogins(KetenError):
    """429: too many login attempts from this address or for this citizen; ``retry_after``
    says in how many seconds the next one is allowed."""

    status = 429

    def __init__(self, retry_after: int):
        super().__init__("too_many_logins", "too many login attempts; try again later")
        self.retry_after = retry_after


@dataclass(frozen=True)
class LoginLimits:
    per_address: int
    per_citizen: int
    window: float


class LoginLimiter:
    """Counts login attempts in table ``keten_login_attempts`` (one row per attempt, deleted
    once out of the window)."""

    def __init__(self, store: SqlStore, master_key: bytes, limits: LoginLimits):
        self.store = store
        self.limits = limits
        self.key = hashlib.sha256(b"keten-login-limits" + master_key).digest()
        store.execute_script(
            [
                "CREATE TABLE IF NOT EXISTS keten_login_attempts ("
                " bucket TEXT NOT NULL,"
                " attempted_at DOUBLE PRECISION NOT NULL)",
                "CREATE INDEX IF NOT EXISTS keten_login_attempts_bucket"
                " ON keten_login_attempts (bucket, attempted_at)",
            ]
        )

    def address_bucket(self, address: str) -> tuple[str, int]:
        return self._bucket("address", address), self.limits.per_address

    def citizen_bucket(self, pseudonym: str) -> tuple[str, int]:
        return self._bucket("citizen", pseudonym), self.limits.per_citizen

    def admit(self, *buckets: tuple[str, int], now: float | None = None) -> None:
        """Records one attempt in each bucket, or raises ``TooManyLogins`` (recording nothing)
        if any bucket is full: a refused attempt does not push the wait further out."""
        now = time.time() if now is None else now
        since = now - self.limits.window
        with self.store.transaction() as cur:
            cur.execute("DELETE FROM keten_login_attempts WHERE attempted_at < ?", (since,))
            waits = []
            for bucket, limit in buckets:
                rows = cur.execute(
                    "SELECT attempted_at FROM keten_login_attempts WHERE bucket = ? AND attempted_at >= ?"
                    " ORDER BY attempted_at DESC LIMIT ?",
                    (bucket, since, max(limit, 1)),
                ).fetchall()
                if len(rows) >= limit:
                    # Free again when the limit-th newest attempt leaves the window.
                    oldest_that_counts = float(rows[limit - 1][0]) if limit > 0 else now
                    waits.append(oldest_that_counts + self.limits.window - now)
            if waits:
                raise TooManyLogins(max(1, math.ceil(max(waits))))
            for bucket, _ in buckets:
                cur.execute(
                    "INSERT INTO keten_login_attempts (bucket, attempted_at) VALUES (?, ?)", (bucket, now)
                )

    def _bucket(self, kind: str, value: str) -> str:
        digest = hmac.new(self.key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{kind}:{digest}"
