"""The agencies' keys: the platform's record of who may sign commands and to whom content is sealed.

Table ``keten_agency_keys`` in the platform store (PostgreSQL, or ``var/agencies.sqlite`` on the
embedded default), shared by every service that verifies commands and by the relays that seal
shared content to its recipient. Only public keys are stored; the private keys stay with the
agency. Rows are never deleted: a rotated key gets an end date, a removed agency's keys are
revoked at once, so the table is also the history of every key an agency ever had.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.config import MEMORY_DATABASE_URL, Settings
from shared.db import SqlStore, open_store
from shared.errors import NotAuthorised
from shared.wire import Credentials, KeyPair, SignatureError, b64, key_id_for, unb64, verify

#: How long a rotated-out key still verifies, so that commands already on their way still count.
DEFAULT_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True)
class AgencyKey:
    key_id: str
    agency: str
    signing_public_key: bytes
    encryption_public_key: bytes
    created_at: str
    expires_at: str | None
    revoked_at: str | None

    def valid_at(self, moment: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or datetime.fromisoformat(self.expires_at) > moment


class AgencyRegistry:
    """Agencies' public keys: add, rotate, revoke, and verify a signed command."""

    def __init__(self, store: SqlStore):
        self.store = store
        store.execute_script(
            [
                "CREATE TABLE IF NOT EXISTS keten_agency_keys ("
                " key_id TEXT PRIMARY KEY,"
                " agency TEXT NOT NULL,"
                " signing_public_key TEXT NOT NULL,"
                " encryption_public_key TEXT NOT NULL,"
                " created_at TEXT NOT NULL,"
                " expires_at TEXT,"
                " revoked_at TEXT)",
                "CREATE INDEX IF NOT EXISTS keten_agency_keys_agency ON keten_agency_keys (agency)",
            ]
        )

    @classmethod
    def for_settings(cls, settings: Settings) -> AgencyRegistry:
        """The process's registry for these settings: its table is created once, not by every
        service of the process at the same moment (PostgreSQL's CREATE TABLE IF NOT EXISTS
        is not safe against itself)."""
        if settings.database_url == MEMORY_DATABASE_URL:
            return cls(open_store(settings, "agencies"))  # unit tests: one registry each
        key = (settings.database_url, settings.database_schema, settings.var_dir)
        with _registries_lock:
            if key not in _registries or _registries[key].closed:
                _registries[key] = cls(open_store(settings, "agencies"))
            return _registries[key]

    @property
    def closed(self) -> bool:
        return bool(getattr(self.store.datastore, "_closed", False))

    # -- keys ---------------------------------------------------------------------------------
    def add_key(self, agency: str, signing_public_key: bytes, encryption_public_key: bytes) -> AgencyKey:
        """Registers a key (idempotent for the same public key)."""
        if len(signing_public_key) != 32 or len(encryption_public_key) != 32:
            raise ValueError("public keys are 32 raw bytes (Ed25519 and X25519)")
        key_id = key_id_for(signing_public_key)
        with self.store.transaction() as cur:
            cur.execute(
                "INSERT INTO keten_agency_keys (key_id, agency, signing_public_key,"
                " encryption_public_key, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING",
                (key_id, agency, b64(signing_public_key), b64(encryption_public_key), _now().isoformat()),
            )
        key = self.key(key_id)
        assert key is not None
        if key.agency != agency:
            raise ValueError("this public key is registered for another agency")
        return key

    def rotate(
        self,
        agency: str,
        signing_public_key: bytes,
        encryption_public_key: bytes,
        overlap: timedelta = DEFAULT_OVERLAP,
    ) -> AgencyKey:
        """Adds a key as the agency's current one; its other keys stay valid for ``overlap``."""
        new = self.add_key(agency, signing_public_key, encryption_public_key)
        ends = (_now() + overlap).isoformat()
        with self.store.transaction() as cur:
            cur.execute(
                "UPDATE keten_agency_keys SET expires_at = ? WHERE agency = ? AND key_id <> ?"
                " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                (ends, agency, new.key_id, ends),
            )
        return new

    def revoke(self, agency: str, key_id: str | None = None) -> int:
        """Revokes one key of the agency, or all of them; returns how many were still valid."""
        now = _now()
        targets = [k for k in self.all_keys(agency) if k.revoked_at is None and key_id in (None, k.key_id)]
        with self.store.transaction() as cur:
            for key in targets:
                cur.execute(
                    "UPDATE keten_agency_keys SET revoked_at = ? WHERE key_id = ?",
                    (now.isoformat(), key.key_id),
                )
        return sum(key.valid_at(now) for key in targets)

    def key(self, key_id: str) -> AgencyKey | None:
        with self.store.transaction(commit=False) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM keten_agency_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        return _key(row) if row else None

    def keys(self, key_ids: Iterable[Any]) -> dict[str, AgencyKey]:
        """The keys of ``key_ids`` that exist, in one statement: what a batch of commands is
        verified with. Read anew for each batch, never kept: a revocation holds from its commit."""
        wanted = sorted({key_id for key_id in key_ids if isinstance(key_id, str) and key_id})
        if not wanted:
            return {}
        with self.store.transaction(commit=False) as cur:
            marks = ", ".join("?" for _ in wanted)
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM keten_agency_keys WHERE key_id IN ({marks})", wanted
            ).fetchall()
        return {key.key_id: key for key in map(_key, rows)}

    def all_keys(self, agency: str | None = None) -> list[AgencyKey]:
        with self.store.transaction(commit=False) as cur:
            if agency is None:
                rows = cur.execute(
                    f"SELECT {_COLUMNS} FROM keten_agency_keys ORDER BY agency, created_at"
                ).fetchall()
            else:
                rows = cur.execute(
                    f"SELECT {_COLUMNS} FROM keten_agency_keys WHERE agency = ? ORDER BY created_at",
                    (agency,),
                ).fetchall()
        return [_key(row) for row in rows]

    def current_key(self, agency: str) -> AgencyKey | None:
        """The agency's newest valid key: what content shared with it is sealed to."""
        now = _now()
        valid = [key for key in self.all_keys(agency) if key.valid_at(now)]
        return valid[-1] if valid else None

    def current_keys(self, agencies: Iterable[str]) -> dict[str, AgencyKey]:
        """Each agency's ``current_key`` (those that have one), read in one statement: what a
        relay round seals its shares to. Read anew for each round, never kept: a rotation or
        revocation holds from the next round after its commit."""
        wanted = sorted(set(agencies))
        if not wanted:
            return {}
        with self.store.transaction(commit=False) as cur:
            marks = ", ".join("?" for _ in wanted)
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM keten_agency_keys WHERE agency IN ({marks})"
                " ORDER BY agency, created_at",
                wanted,
            ).fetchall()
        now = _now()
        current: dict[str, AgencyKey] = {}
        for key in map(_key, rows):
            if key.valid_at(now):
                current[key.agency] = key  # the newest valid one stays, as in current_key
        return current

    # -- verifying ------------------------------------------------------------------------------
    def verify(
        self,
        key_id: Any,
        signature: Any,
        target: str,
        body: bytes,
        known: Mapping[str, AgencyKey] | None = None,
    ) -> str:
        """The agency whose valid key signed ``target`` and ``body``; ``NotAuthorised`` otherwise.
        ``known``: the keys read for a batch (``keys``), instead of a read of its own.

        The error does not say which part failed beyond missing/unknown/invalid: a prober learns
        nothing about which key ids exist.
        """
        if not isinstance(key_id, str) or not isinstance(signature, str) or not key_id or not signature:
            raise NotAuthorised("signature_missing", "a command must carry a key id and a signature")
        key = known.get(key_id) if known is not None else self.key(key_id)
        if key is None or not key.valid_at(_now()):
            raise NotAuthorised("bad_signature", "the signature does not verify with a valid key")
        try:
            verify(key.signing_public_key, target, body, signature)
        except SignatureError:
            raise NotAuthorised("bad_signature", "the signature does not verify with a valid key") from None
        return key.agency


_registries: dict[tuple[Any, ...], AgencyRegistry] = {}
_registries_lock = threading.Lock()

_COLUMNS = "key_id, agency, signing_public_key, encryption_public_key, created_at, expires_at, revoked_at"


def _key(row: Any) -> AgencyKey:
    return AgencyKey(
        key_id=row[0],
        agency=row[1],
        signing_public_key=unb64(row[2]),
        encryption_public_key=unb64(row[3]),
        created_at=row[4],
        expires_at=row[5],
        revoked_at=row[6],
    )


def _now() -> datetime:
    return datetime.now(UTC)


# -- the embedded default's demo credentials ----------------------------------------------------
def local_credentials_dir(settings: Settings) -> Path:
    return settings.var_dir / "agencies"


def ensure_local_credentials(settings: Settings, agencies: list[str]) -> dict[str, dict[str, Any]]:
    """For the embedded default: a key pair for each agency, private keys in
    ``var/agencies/<agency>.json`` (mode 0600), public keys registered; so that ``make run`` and
    ``make demo`` need no configuration. Existing credentials are kept."""
    registry = AgencyRegistry.for_settings(settings)
    folder = local_credentials_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    found = {}
    for agency in agencies:
        path = folder / f"{agency}.json"
        if path.exists():
            credentials = json.loads(path.read_text())
        else:
            keys = KeyPair.generate()
            credentials = {
                "agency": agency,
                "key_id": keys.key_id,
                "signing_private_key": b64(keys.signing_private_key),
                "encryption_private_key": b64(keys.encryption_private_key),
            }
            write_private(path, credentials)
        keys = KeyPair(
            unb64(credentials["signing_private_key"]), unb64(credentials["encryption_private_key"])
        )
        registry.add_key(agency, keys.signing_public_key, keys.encryption_public_key)
        found[agency] = credentials
    return found


def register_new_credentials(settings: Settings, agency: str, amqp_url: str = "") -> Credentials:
    """A new key pair for ``agency`` with its public keys registered: what tests and the benchmark
    sign with when they act as an agency (``keten agency add`` also makes a broker user)."""
    keys = KeyPair.generate()
    AgencyRegistry.for_settings(settings).add_key(agency, keys.signing_public_key, keys.encryption_public_key)
    return Credentials(
        agency=agency,
        key_id=keys.key_id,
        signing_private_key=b64(keys.signing_private_key),
        encryption_private_key=b64(keys.encryption_private_key),
        amqp_url=amqp_url,
    )


def write_private(path: Path, document: dict[str, Any]) -> None:
    """Writes a JSON document only its owner may read (it holds private keys or passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
