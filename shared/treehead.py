"""Signed tree heads and proofs of the verifiable logs, as anyone checks them.

What a citizen, an agency or a supervisor needs to check a head, an inclusion proof or a
consistency proof, without the platform's store or secrets: the head's format and signature
(Ed25519 over ``HEAD_CONTEXT``, the log's name, size, root hash and time in milliseconds), and
the proof blocks that a citizen's copy and an agency's receipt carry. The platform's side (the
log itself, its key) is ``shared.tlog``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared import merkle
from shared.wire import key_id_for

HEAD_CONTEXT = b"keten tree head v1\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# -- heads and the log key ---------------------------------------------------------------------
@dataclass(frozen=True)
class TreeHead:
    """A signed tree head: the log ``log`` had ``size`` leaves with ``root`` at ``signed_at``."""

    log: str
    size: int
    root: bytes
    signed_at: datetime
    key_id: str
    signature: str
    public_key: str = ""

    def signed_bytes(self) -> bytes:
        return head_bytes(self.log, self.size, self.root, self.signed_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "tree_size": self.size,
            "root_hash": b64(self.root),
            "timestamp": self.signed_at.isoformat(timespec="milliseconds"),
            "key_id": self.key_id,
            "public_key": self.public_key,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, data: Any) -> TreeHead:
        """Raises ValueError on anything but a head as ``to_json`` writes it."""
        try:
            return cls(
                log=str(data["log"]),
                size=int(data["tree_size"]),
                root=unb64(data["root_hash"]),
                signed_at=datetime.fromisoformat(data["timestamp"]),
                key_id=str(data["key_id"]),
                signature=str(data["signature"]),
                public_key=str(data.get("public_key") or ""),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError("not a signed tree head") from None


def head_bytes(log: str, size: int, root: bytes, signed_at: datetime) -> bytes:
    millis = int(signed_at.timestamp() * 1000)
    return HEAD_CONTEXT + f"{log}\n{size}\n{root.hex()}\n{millis}".encode()


def head_signature_valid(head: TreeHead, public_key: bytes | None = None) -> bool:
    """Whether ``head`` is signed by ``public_key`` (default: the key the head names; whether
    that key is the platform's is for the caller to check, e.g. against ``keten log key``)."""
    try:
        raw = public_key if public_key is not None else unb64(head.public_key)
        if key_id_for(raw) != head.key_id:
            return False
        Ed25519PublicKey.from_public_bytes(raw).verify(unb64(head.signature), head.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_head(head: TreeHead, public_key: bytes | None = None) -> bool:
    return head_signature_valid(head, public_key)


def verify_extends(old: TreeHead, new: TreeHead, proof: Sequence[bytes]) -> bool:
    """Whether ``new``'s tree extends ``old``'s (same log, a valid consistency proof)."""
    return old.log == new.log and merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)


def verify_inclusion(head: TreeHead, proof: dict[str, Any]) -> bool:
    """Whether ``proof`` (as ``TransparencyLog.inclusion`` writes it) shows its leaf in ``head``."""
    try:
        return int(proof["tree_size"]) == head.size and merkle.verify_inclusion(
            unb64(proof["leaf_hash"]),
            int(proof["leaf_index"]),
            head.size,
            [unb64(p) for p in proof["audit_path"]],
            head.root,
        )
    except (KeyError, TypeError, ValueError):
        return False


# -- proofs handed out -------------------------------------------------------------------------
def proof_block(head: TreeHead, inclusion: dict[str, Any]) -> dict[str, Any]:
    """What a citizen's copy and an agency's receipt carry for one decision: the signed head
    and the proof that the decision's leaf is in it (checked offline by ``keten log verify --copy``)."""
    return {"head": head.to_json(), "inclusion": inclusion}


def verify_proof_block(block: Any, public_key: bytes | None = None) -> bool:
    """Whether ``block`` (``proof_block``) holds a head signed by its log key (``public_key``
    if given) and a valid inclusion proof in it."""
    try:
        head = TreeHead.from_json(block["head"])
        inclusion = block["inclusion"]
    except (KeyError, TypeError, ValueError):
        return False
    return head_signature_valid(head, public_key) and verify_inclusion(head, inclusion)


def proof_blocks(document: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every ``verifiable_log`` block in a JSON document, with where it is."""
    found: list[tuple[str, Any]] = []
    if isinstance(document, dict):
        for key, value in document.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "verifiable_log":
                found.append((where, value))
            else:
                found.extend(proof_blocks(value, where))
    elif isinstance(document, list):
        for number, item in enumerate(document):
            found.extend(proof_blocks(item, f"{path}[{number}]"))
    return found
