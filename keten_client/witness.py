"""A witness of Keten's verifiable logs: keep the heads you saw, and notice a fork.

A signed tree head says "this log had N decisions with this root". The platform could show one
history to you and another to someone else, or rewrite its past and sign anew. A witness keeps
the largest head it saw of each log and accepts a new head only if a consistency proof shows
that one tree extends the other (RFC 9162); a head that cannot be reconciled with the kept one
is a fork: ``ForkDetected`` is raised and a warning logged, and the kept head stays as evidence.

witness = HeadWitness(Path("keten-heads.json"), consistency=http_consistency("https://keten.example"))
witness.check_proof(receipt["verifiable_log"])   # a share's proof: inclusion, and its head witnessed
witness.observe(head)                             # any head seen, e.g. from GET /api/log/head

Pin the platform's log keys (``public_keys``, published by its operator) to refuse heads signed
by any other key.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.treehead import TreeHead, head_signature_valid, unb64, verify_extends, verify_inclusion

log = logging.getLogger(__name__)

#: Asks the platform for the proof that a log at ``to_size`` extends itself at ``from_size``.
Consistency = Callable[[str, int, int], Sequence[bytes]]


class ForkDetected(Exception):
    """Two signed heads of one log that no consistency proof reconciles: the log's history
    was changed, or differs between who sees it. Keep both heads: they are the evidence."""

    def __init__(self, log_name: str, kept: TreeHead, seen: TreeHead):
        super().__init__(
            f"log {log_name}: the head of size {seen.size} does not extend the head of size {kept.size} kept"
        )
        self.kept = kept
        self.seen = seen


class UntrustedHead(Exception):
    """A head whose signature does not verify (against the pinned key, if any)."""


def http_consistency(base_url: str, timeout: float = 10.0) -> Consistency:
    """Consistency proofs from the gateway's public ``GET /api/log/{log}/consistency``."""

    def fetch(log_name: str, from_size: int, to_size: int) -> Sequence[bytes]:
        query = urllib.parse.urlencode({"from_size": from_size, "to_size": to_size})
        url = f"{base_url.rstrip('/')}/api/log/{urllib.parse.quote(log_name)}/consistency?{query}"
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the platform's URL)
            return [unb64(node) for node in json.loads(response.read())["proof"]]

    return fetch


class HeadWitness:
    """Keeps the largest head seen of each log (in ``path``, if given) and checks every new one."""

    def __init__(
        self,
        path: Path | None = None,
        consistency: Consistency | None = None,
        public_keys: Mapping[str, bytes] | None = None,
    ):
        self.path = path
        self.consistency = consistency
        self.public_keys = dict(public_keys or {})
        self._lock = threading.Lock()
        self.heads: dict[str, TreeHead] = {}
        if path is not None and path.exists():
            stored = json.loads(path.read_text())
            self.heads = {name: TreeHead.from_json(head) for name, head in stored.items()}

    def observe(self, head_json: Any) -> TreeHead:
        """Checks a head against the one kept for its log, keeps the larger; raises
        ``UntrustedHead`` for a bad signature and ``ForkDetected`` for a head that does not fit."""
        head = TreeHead.from_json(head_json)
        if not head_signature_valid(head, self.public_keys.get(head.log)):
            raise UntrustedHead(f"log {head.log}: a head not signed by the log's key")
        with self._lock:
            kept = self.heads.get(head.log)
            if kept is not None and not self._consistent(kept, head):
                log.warning("verifiable log fork: %s (kept %s, seen %s)", head.log, kept.size, head.size)
                raise ForkDetected(head.log, kept, head)
            if kept is None or head.size > kept.size:
                self.heads[head.log] = head
                self._save()
        return head

    def check_proof(self, block: Any) -> TreeHead:
        """A proof block (a receipt's, a citizen's copy's): the leaf is in the head, and the head
        is witnessed (``observe``). Raises ``ValueError`` if the inclusion proof fails."""
        head = self.observe(block["head"])
        if not verify_inclusion(head, block["inclusion"]):
            raise ValueError(f"log {head.log}: the inclusion proof does not lead to the signed root")
        return head

    def _consistent(self, kept: TreeHead, seen: TreeHead) -> bool:
        if seen.size == kept.size:
            return seen.root == kept.root
        older, newer = (kept, seen) if kept.size < seen.size else (seen, kept)
        if older.size == 0:
            return True  # an empty tree is a prefix of every tree
        if self.consistency is None:
            raise RuntimeError("a witness without a source of consistency proofs cannot compare heads")
        return verify_extends(older, newer, self.consistency(kept.log, older.size, newer.size))

    def _save(self) -> None:
        if self.path is not None:
            self.path.write_text(
                json.dumps({name: head.to_json() for name, head in self.heads.items()}, indent=2)
            )
