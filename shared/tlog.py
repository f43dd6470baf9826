"""The verifiable log: a Merkle log (RFC 9162) of the decisions a service records.

Each publishing service that records decisions a citizen's overview shows keeps one log in its
own store. Its relay (``shared.relay``) appends a leaf for every event of the kinds its
application names (``KetenApplication.logged_events``), in notification order, in the same
transaction that records the relay's position, so the log holds exactly the events stored, in
the order they were stored, a batch per relay round.

A leaf is a commitment to one stored event: HMAC-SHA-256 over the event's stored bytes
(originator id, version, topic, state) keyed with a random salt of the event's case. The salt
is stored sealed under the case's key (``shared.crypto``), so once the case is purged
(its keys shredded) nobody can recompute the leaf from the event, or tell which events a leaf
stands for, while the tree itself, its heads and their proofs still verify. An event without a
case, or of a case already purged when it is appended (the purge record itself), is keyed with
the log's own salt, derived from the master key.

The log's head (size, root hash, time) is signed with the service's log key, Ed25519, derived
from the master key like the event keys (``shared.provenance``), at a fixed interval and on
demand. ``verify_log`` checks the stored events against the leaves and the leaves against every
stored head.

Checking heads and proofs without the store (what citizens, agencies and supervisors do) is
``shared.treehead``; its names are re-exported here for the platform's side.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eventsourcing.persistence import Notification

from shared import merkle
from shared.catchup import kind_of_topic
from shared.contracts.envelope import OutgoingMessage
from shared.contracts.log import LOG_MESSAGE_VERSION, TREE_HEAD_SIGNED
from shared.crypto import ScopeShreddedError
from shared.db import Cursor
from shared.errors import InvalidRequest
from shared.sealed import KeyScope, Purged, Sealed
from shared.topology import LOG_EXCHANGE
from shared.treehead import (
    TreeHead,
    b64,
    head_bytes,
    head_signature_valid,
    proof_block,
    proof_blocks,
    unb64,
    verify_extends,
    verify_inclusion,
    verify_proof_block,
)
from shared.wire import key_id_for

HEAD_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/log-heads")
#: Which salt keyed a leaf: its case's, or the log's own (no case, or a case already purged).
CASE_SALT = "case"
LOG_SALT = "log"
#: Case salts kept in memory by the relay (the rest are read and opened again when needed).
SALT_CACHE_SIZE = 10_000


def log_tables(prefix: str) -> list[str]:
    """The log's tables in an application's store (``prefix``: the application's name)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {prefix}_log_leaves ("
        " leaf_index BIGINT PRIMARY KEY, notification_id BIGINT NOT NULL UNIQUE,"
        " originator_id TEXT NOT NULL, originator_version BIGINT NOT NULL,"
        " leaf_hash TEXT NOT NULL, salt TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_log_leaves_originator"
        f" ON {prefix}_log_leaves (originator_id, originator_version)",
        f"CREATE TABLE IF NOT EXISTS {prefix}_log_salts (case_id TEXT PRIMARY KEY, salt TEXT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {prefix}_log_heads ("
        " tree_size BIGINT NOT NULL, root_hash TEXT NOT NULL, signed_at TEXT NOT NULL,"
        " key_id TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY (tree_size, signed_at))",
    ]


class LogKey:
    """A service's log key: Ed25519, derived from the master key (one per service)."""

    def __init__(self, master_key: bytes, log: str):
        self.log = log
        seed = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"keten log signing",
            info=f"keten log key v1 {log}".encode(),
        ).derive(master_key)
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = key_id_for(self.public)
        #: Keys the log's leaves with no case salt (see the module's docstring).
        self.salt = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"keten log salt",
            info=f"keten log salt v1 {log}".encode(),
        ).derive(master_key)

    def sign(self, size: int, root: bytes) -> TreeHead:
        # Milliseconds: the head says exactly the time its signature covers.
        now = datetime.now(UTC)
        moment = now.replace(microsecond=now.microsecond // 1000 * 1000)
        signature = self._key.sign(head_bytes(self.log, size, root, moment))
        return TreeHead(self.log, size, root, moment, self.key_id, b64(signature), b64(self.public))


# -- leaves ------------------------------------------------------------------------------------
def commitment(salt: bytes, notification: Notification) -> bytes:
    """What a leaf holds: the stored event's bytes, keyed with its salt."""
    message = b"keten leaf v1\n%s\n%d\n%s\n" % (
        str(notification.originator_id).encode(),
        notification.originator_version,
        notification.topic.encode(),
    )
    return hmac.new(salt, message + bytes(notification.state), hashlib.sha256).digest()


@dataclass(frozen=True)
class Leaf:
    index: int
    notification_id: int
    hash: bytes
    salt: str
    originator_id: str = ""
    originator_version: int = 0


@dataclass
class Appending:
    """Leaves made for one relay round, with the new case salts they need; written in the
    relay's transaction (``write``), then taken in by the log (``TransparencyLog.appended``)."""

    log: TransparencyLog
    leaves: list[Leaf] = field(default_factory=list)
    salts: dict[str, str] = field(default_factory=dict)

    def write(self, cur: Cursor) -> None:
        self.log.write(cur, self)


class TransparencyLog:
    """One application's Merkle log: append (from the relay), heads, proofs."""

    def __init__(self, app: Any):
        self.app = app
        self.name: str = app.name
        self.prefix = app.name.lower()
        self.kinds: frozenset[str] = app.logged_events
        self.key = LogKey(app.settings.master_key, self.name)
        self._salts: OrderedDict[str, bytes | None] = OrderedDict()  # case id -> salt (None: none stored)
        self._purged: set[str] = set()  # cases whose salt (or key) was shredded
        self._lock = threading.Lock()
        #: The leaf hashes and every complete subtree's hash (heads and proofs in O(log² n)).
        self.tree = merkle.MerkleTree()
        self.last_notification = 0
        self.refresh()

    @classmethod
    def of(cls, app: Any) -> TransparencyLog:
        """The application's log in this process (one, shared by its relay and its entrypoints)."""
        log: TransparencyLog | None = app.__dict__.get("_transparency_log")
        if log is None:
            log = app.__dict__["_transparency_log"] = cls(app)
        return log

    # -- state ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reads the leaves stored since it last looked (it keeps the leaf hashes in memory for
        heads and proofs; another replica's relay may have appended)."""
        with self._lock:
            with self.app.sql.transaction(commit=False) as cur:
                rows = cur.execute(
                    f"SELECT leaf_hash, notification_id FROM {self.prefix}_log_leaves"
                    " WHERE leaf_index >= ? ORDER BY leaf_index",
                    (self.tree.size,),
                ).fetchall()
            if rows:
                for row in rows:
                    self.tree.append(bytes.fromhex(row[0]))
                self.last_notification = int(rows[-1][1])

    @property
    def size(self) -> int:
        return self.tree.size

    # -- appending ------------------------------------------------------------------------------
    def leaves_for(self, events: Iterable[tuple[Notification, Any]]) -> Appending:
        """The leaves for the logged events among ``events`` (notifications and their domain
        events, in order) not in the log yet."""
        appending = Appending(self)
        index = self.size
        logged = [
            (notification, domain_event)
            for notification, domain_event in events
            if notification.id > self.last_notification and type(domain_event).__name__ in self.kinds
        ]
        self._load_salts({str(e.case_id) for _, e in logged if getattr(e, "case_id", None) is not None})
        for notification, domain_event in logged:
            salt, which = self._salt_for(getattr(domain_event, "case_id", None), appending)
            leaf_hash = merkle.leaf_hash(commitment(salt, notification))
            appending.leaves.append(
                Leaf(
                    index,
                    notification.id,
                    leaf_hash,
                    which,
                    str(notification.originator_id),
                    notification.originator_version,
                )
            )
            index += 1
        return appending

    def _salt_for(self, case_id: UUID | None, appending: Appending) -> tuple[bytes, str]:
        if case_id is None:
            return self.key.salt, LOG_SALT
        key = str(case_id)
        if key not in self._salts:
            self._load_salts({key})
        self._salts.move_to_end(key)
        salt = self._salts[key]
        if salt is not None:
            return salt, CASE_SALT
        if key in self._purged:
            return self.key.salt, LOG_SALT
        fresh = os.urandom(32)
        try:
            sealed = self.app.vault.seal(KeyScope(case_id), fresh.hex())
        except ScopeShreddedError:  # the case was purged before it had a salt
            self._purged.add(key)
            return self.key.salt, LOG_SALT
        appending.salts[key] = json.dumps(sealed.to_json())
        self._salts[key] = fresh
        return fresh, CASE_SALT

    def _load_salts(self, case_ids: set[str]) -> None:
        """Reads the stored salts of the cases not in memory yet, in one query."""
        missing = sorted(case_id for case_id in case_ids if case_id not in self._salts)
        if not missing:
            return
        with self.app.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT case_id, salt FROM {self.prefix}_log_salts"
                f" WHERE case_id IN ({','.join('?' * len(missing))})",
                tuple(missing),
            ).fetchall()
        stored = {str(row[0]): str(row[1]) for row in rows}
        for case_id in missing:
            salt = None
            if case_id in stored:
                opened = self.app.vault.open(Sealed.from_json(json.loads(stored[case_id])))
                if isinstance(opened, Purged):
                    self._purged.add(case_id)
                else:
                    salt = bytes.fromhex(opened)
            self._salts[case_id] = salt
        while len(self._salts) > SALT_CACHE_SIZE:
            self._salts.popitem(last=False)

    def write(self, cur: Cursor, appending: Appending) -> None:
        """Stores the round's leaves and new salts (inside the relay's transaction), one
        statement each: a round trip per row would cost the relay more than the rest of it."""
        _insert_rows(cur, f"{self.prefix}_log_salts (case_id, salt)", sorted(appending.salts.items()))
        _insert_rows(
            cur,
            f"{self.prefix}_log_leaves"
            " (leaf_index, notification_id, originator_id, originator_version, leaf_hash, salt)",
            [
                (
                    leaf.index,
                    leaf.notification_id,
                    leaf.originator_id,
                    leaf.originator_version,
                    leaf.hash.hex(),
                    leaf.salt,
                )
                for leaf in appending.leaves
            ],
        )

    def appended(self, appending: Appending) -> None:
        """Takes in what ``write`` stored, once its transaction committed."""
        with self._lock:
            for leaf in appending.leaves:
                if leaf.index == self.tree.size:  # not read already by ``refresh``
                    self.tree.append(leaf.hash)
                    self.last_notification = leaf.notification_id

    def forget_unsaved(self, appending: Appending) -> None:
        """The transaction did not commit: the salts made for it were never stored."""
        for case_id in appending.salts:
            self._salts.pop(case_id, None)

    @contextmanager
    def round(self, events: Iterable[tuple[Notification, Any]]) -> Iterator[Appending]:
        """The leaves for ``events``: write them (``Appending.write``) in a transaction inside
        the block; the log takes them in when the block ends without an error."""
        appending = self.leaves_for(events)
        try:
            yield appending
        except BaseException:
            self.forget_unsaved(appending)
            raise
        self.appended(appending)

    def append(self, events: Iterable[tuple[Notification, Any]]) -> int:
        """Appends in a transaction of its own (a relay without a durable position)."""
        with self.round(events) as appending:
            if appending.leaves:
                with self.app.sql.transaction() as cur:
                    appending.write(cur)
        return len(appending.leaves)

    def catch_up(self, upto: int) -> int:
        """Appends the logged events stored up to ``upto`` that have no leaf yet (a log started
        after its service had recorded events)."""
        added = 0
        start = self.last_notification
        while start < upto:
            batch = self.app.recorder.select_notifications(
                start=start, limit=500, stop=upto, inclusive_of_start=False
            )
            if not batch:
                break
            added += self.append(
                (n, self.app.mapper.to_domain_event(n)) for n in batch if kind_of_topic(n.topic) in self.kinds
            )
            start = batch[-1].id
        return added

    # -- heads and proofs -----------------------------------------------------------------------
    def latest_head(self) -> TreeHead | None:
        heads = stored_heads(self.app, limit=1)
        return heads[0] if heads else None

    def sign_head(self) -> TreeHead:
        """Signs and stores the head of the log as it is now."""
        with self._lock:
            size, root = self.tree.size, self.tree.root()
        head = self.key.sign(size, root)
        with self.app.sql.transaction() as cur:
            cur.execute(
                f"INSERT INTO {self.prefix}_log_heads (tree_size, root_hash, signed_at, key_id, signature)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (head.size, head.root.hex(), head.signed_at.isoformat(), head.key_id, head.signature),
            )
        return head

    def head(self, max_age: float) -> TreeHead:
        """The latest head, signed anew if the log grew since and that head is older than
        ``max_age`` seconds (or there is none)."""
        self.refresh()
        latest = self.latest_head()
        if latest is not None and (
            latest.size == self.size or (datetime.now(UTC) - latest.signed_at).total_seconds() < max_age
        ):
            return latest
        return self.sign_head()

    def inclusion(self, notification_id: int, head: TreeHead) -> dict[str, Any] | None:
        """The proof that the event at ``notification_id`` is a leaf of ``head``'s tree."""
        with self.app.sql.transaction(commit=False) as cur:
            row = cur.execute(
                f"SELECT leaf_index FROM {self.prefix}_log_leaves WHERE notification_id = ?",
                (notification_id,),
            ).fetchone()
        return None if row is None else self.inclusion_at(int(row[0]), head)

    def inclusion_at(self, index: int, head: TreeHead) -> dict[str, Any] | None:
        """The proof that leaf ``index`` is in ``head``'s tree (None if the head is older)."""
        with self._lock:
            if not 0 <= index < head.size <= self.tree.size:
                return None
            leaf, path = self.tree.leaf(index), self.tree.inclusion_proof(index, head.size)
        return {
            "leaf_index": index,
            "leaf_hash": b64(leaf),
            "tree_size": head.size,
            "audit_path": [b64(h) for h in path],
        }

    def proofs_of_records(self, record_ids: Sequence[str], max_age: float) -> dict[str, dict[str, Any]]:
        """For each record (an aggregate whose first event is logged: a share, a refusal) that
        has its leaf, the proof block against a head that holds it (signed now if needed)."""
        if not record_ids:
            return {}
        self.refresh()
        marks = ",".join("?" * len(record_ids))
        with self.app.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT originator_id, leaf_index FROM {self.prefix}_log_leaves"
                f" WHERE originator_version = 1 AND originator_id IN ({marks})",
                tuple(record_ids),
            ).fetchall()
        if not rows:
            return {}
        head = self.head(max_age)
        if max(int(row[1]) for row in rows) >= head.size:
            head = self.sign_head()
        blocks = {}
        for record_id, index in rows:
            inclusion = self.inclusion_at(int(index), head)
            if inclusion is not None:
                blocks[str(record_id)] = proof_block(head, inclusion)
        return blocks

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """The proof that the tree of ``new_size`` leaves extends the tree of ``old_size``."""
        with self._lock:
            return self.tree.consistency_proof(old_size, new_size)


def _insert_rows(cur: Cursor, into: str, rows: Sequence[tuple[Any, ...]]) -> None:
    if rows:
        group = "(" + ",".join("?" * len(rows[0])) + ")"
        cur.execute(
            f"INSERT INTO {into} VALUES {','.join([group] * len(rows))}", [v for row in rows for v in row]
        )


def stored_heads(app: Any, limit: int | None = None) -> list[TreeHead]:
    """The heads the log signed, latest first."""
    key = LogKey(app.settings.master_key, app.name)
    statement = (
        f"SELECT tree_size, root_hash, signed_at, key_id, signature FROM {app.name.lower()}_log_heads"
        " ORDER BY tree_size DESC, signed_at DESC"
    )
    if limit is not None:
        statement += f" LIMIT {int(limit)}"
    with app.sql.transaction(commit=False) as cur:
        rows = cur.execute(statement).fetchall()
    return [
        TreeHead(
            app.name,
            int(row[0]),
            bytes.fromhex(row[1]),
            datetime.fromisoformat(row[2]),
            row[3],
            row[4],
            b64(key.public) if row[3] == key.key_id else "",
        )
        for row in rows
    ]


# -- verification ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """One thing wrong with a log: ``leaf`` names the leaf index where there is one."""

    log: str
    code: str
    leaf: int | None
    detail: str

    def line(self) -> str:
        where = f"leaf {self.leaf}" if self.leaf is not None else "log"
        return f"{self.log}: {where}: {self.code}: {self.detail}"


@dataclass(frozen=True)
class LogReport:
    log: str
    leaves: int
    checked: int
    purged: int
    heads: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def verify_log(app: Any) -> LogReport:
    """Checks ``app``'s log against its stored events and heads.

    Each leaf must stand for the event it names, unchanged (leaves of purged cases cannot be
    recomputed, by design, and are counted as such); every logged event up to the last leaf
    must have its leaf, in order; every stored head must be signed by the log's key and match
    the leaves.
    """
    prefix = app.name.lower()
    key = LogKey(app.settings.master_key, app.name)
    kinds: frozenset[str] = app.logged_events
    findings: list[Finding] = []

    def found(code: str, leaf: int | None, detail: str) -> None:
        findings.append(Finding(app.name, code, leaf, detail))

    # Heads first, then leaves, then events: each read covers what the one before refers to,
    # while the relay goes on appending.
    heads = stored_heads(app)
    with app.sql.transaction(commit=False) as cur:
        rows = cur.execute(
            f"SELECT leaf_index, notification_id, leaf_hash, salt FROM {prefix}_log_leaves"
            " ORDER BY leaf_index"
        ).fetchall()
        salt_rows = cur.execute(f"SELECT case_id, salt FROM {prefix}_log_salts").fetchall()
    leaves = [Leaf(int(r[0]), int(r[1]), bytes.fromhex(r[2]), str(r[3])) for r in rows]
    sealed_salts = {str(r[0]): r[1] for r in salt_rows}
    events = _logged_events(app, kinds)

    opened: dict[str, bytes | None] = {}

    def salt_of(leaf: Leaf, domain_event: Any) -> bytes | None:
        if leaf.salt == LOG_SALT:
            return key.salt
        case_id = str(getattr(domain_event, "case_id", ""))
        if case_id not in opened:
            text = sealed_salts.get(case_id)
            value = app.vault.open(Sealed.from_json(json.loads(text))) if text else None
            opened[case_id] = bytes.fromhex(value) if isinstance(value, str) else None
        return opened[case_id]

    stored_hashes = {leaf.hash: leaf.index for leaf in leaves}
    checked = purged = 0
    previous_id = 0
    for position, leaf in enumerate(leaves):
        if leaf.index != position:
            found("leaf_missing", position, f"the leaves jump from {position - 1} to {leaf.index}")
            break
        if leaf.notification_id <= previous_id:
            found(
                "out_of_order",
                leaf.index,
                f"event at position {leaf.notification_id} is not after the leaf before",
            )
        previous_id = leaf.notification_id
        event = events.pop(leaf.notification_id, None)
        if event is None:
            found("event_missing", leaf.index, f"the event at position {leaf.notification_id} is gone")
            continue
        notification, domain_event = event
        salt = salt_of(leaf, domain_event) if domain_event is not None else None
        if salt is None:
            if domain_event is not None and leaf.salt == CASE_SALT and _case_purged(app, domain_event):
                purged += 1
                continue
            found(
                "event_changed",
                leaf.index,
                f"the event at position {leaf.notification_id} cannot be read as logged",
            )
            continue
        recomputed = merkle.leaf_hash(commitment(salt, notification))
        checked += 1
        if hmac.compare_digest(recomputed, leaf.hash):
            continue
        other = stored_hashes.get(recomputed)
        if other is not None:
            found(
                "reordered",
                leaf.index,
                f"the event at position {leaf.notification_id} is the one of leaf {other}",
            )
        else:
            found("event_changed", leaf.index, f"the event at position {leaf.notification_id} changed")
    last_logged = leaves[-1].notification_id if leaves else 0
    for notification_id in sorted(events):
        if notification_id <= last_logged:
            after = next(leaf.index for leaf in leaves if leaf.notification_id > notification_id)
            found("event_inserted", after, f"the event at position {notification_id} has no leaf")

    tree = merkle.MerkleTree([leaf.hash for leaf in leaves])
    for head in heads:
        if not head_signature_valid(head, key.public):
            found("head_unsigned", None, f"the head of size {head.size} is not signed by the log key")
        elif head.size > tree.size:
            found("leaves_missing", tree.size, f"the head of size {head.size} has leaves the log lacks")
        elif tree.root(head.size) != head.root:
            found("head_mismatch", None, f"the leaves do not make the head of size {head.size}")
    return LogReport(app.name, len(leaves), checked, purged, len(heads), tuple(findings))


def _case_purged(app: Any, domain_event: Any) -> bool:
    case_id = getattr(domain_event, "case_id", None)
    return case_id is not None and bool(app.vault.keys.is_case_shredded(case_id))


def _logged_events(app: Any, kinds: frozenset[str]) -> dict[int, tuple[Notification, Any]]:
    """Every stored event of the logged kinds, by position (``None`` for one that no longer
    reads as an event)."""
    events: dict[int, tuple[Notification, Any]] = {}
    start = 0
    while True:
        batch = app.recorder.select_notifications(start=start, limit=1000, inclusive_of_start=False)
        if not batch:
            return events
        for notification in batch:
            if kind_of_topic(notification.topic) in kinds:
                try:
                    domain_event = app.mapper.to_domain_event(notification)
                except Exception:  # a row changed beyond reading: still an event here, changed
                    domain_event = None
                events[notification.id] = (notification, domain_event)
        start = batch[-1].id


# -- what a service answers about its log (its RPC entrypoints) ---------------------------------
#: A head asked for is signed anew when the log grew and the latest is older than this (seconds):
#: on demand, but not a signature per request.
ON_DEMAND_AGE = 1.0
#: Most records one request may ask proofs of.
MOST_PROOFS = 500


def head_answer(app: Any) -> dict[str, Any]:
    """The log's latest signed head (``log_head``)."""
    return TransparencyLog.of(app).head(ON_DEMAND_AGE).to_json()


def consistency_answer(app: Any, request: Any) -> dict[str, Any]:
    """The proof that the log at ``to_size`` leaves extends itself at ``from_size`` (``log_consistency``)."""
    log = TransparencyLog.of(app)
    log.refresh()
    old = request.get("from_size") if isinstance(request, dict) else None
    new = request.get("to_size") if isinstance(request, dict) else None
    if not isinstance(old, int) or not isinstance(new, int):
        raise InvalidRequest("invalid_message", "a consistency request names from_size and to_size")
    if not 0 < old <= new <= log.size:
        raise InvalidRequest("invalid_size", f"sizes must satisfy 0 < from_size <= to_size <= {log.size}")
    return {
        "log": log.name,
        "from_size": old,
        "to_size": new,
        "proof": [b64(h) for h in log.consistency(old, new)],
    }


def proofs_answer(app: Any, request: Any) -> dict[str, Any]:
    """Proof blocks for records by id (``log_proofs``: the citizen's copy asks for its shares)."""
    ids = request.get("record_ids") if isinstance(request, dict) else None
    if not isinstance(ids, list) or len(ids) > MOST_PROOFS:
        raise InvalidRequest("invalid_message", f"record_ids is a list of at most {MOST_PROOFS} ids")
    try:
        wanted = [str(UUID(str(record_id))) for record_id in ids]
    except ValueError:
        raise InvalidRequest("invalid_message", "record_ids holds something that is not an id") from None
    return {"proofs": TransparencyLog.of(app).proofs_of_records(wanted, ON_DEMAND_AGE)}


def head_message(head: TreeHead) -> OutgoingMessage:
    """The head as published on ``keten.log`` (``TreeHeadSignedSchema``)."""
    body = {"schema_version": LOG_MESSAGE_VERSION, "message": TREE_HEAD_SIGNED, "head": head.to_json()}
    return OutgoingMessage(
        routing_key=f"{head.log}.{TREE_HEAD_SIGNED}",
        body=json.dumps(body, separators=(",", ":")).encode(),
        headers={},
        message_id=str(uuid5(HEAD_NAMESPACE, f"{head.log}/{head.size}/{head.signature}")),
        exchange=LOG_EXCHANGE,
    )


__all__ = [
    "LogKey",
    "TransparencyLog",
    "TreeHead",
    "b64",
    "head_message",
    "head_signature_valid",
    "proof_block",
    "proof_blocks",
    "unb64",
    "verify_extends",
    "verify_inclusion",
    "verify_log",
    "verify_proof_block",
]
