"""Personal data as the domain sees it: sealed, opaque, scoped to a case (and subject).

The domain core never needs the plaintext of a name, an address or shared contents to decide
anything; it carries them as ``Sealed`` values. The application layer seals at the boundary
(``shared.crypto.Vault``) and opens only where a person must read them (a notification, the
citizen's overview, the recipient's inbox). Deleting the scope's key shreds every copy at once:
in event stores, read models, messages in queues and dead letters.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class KeyScope:
    """The key a piece of personal data is encrypted with: per case, and per subject within it."""

    case_id: UUID
    subject: str | None = None  # the subject's pseudonym, never a BSN

    @property
    def key_id(self) -> str:
        return f"{self.case_id}" if self.subject is None else f"{self.case_id}/{self.subject}"

    @classmethod
    def parse(cls, key_id: str) -> KeyScope:
        case_id, _, subject = key_id.partition("/")
        return cls(UUID(case_id), subject or None)


@dataclass(frozen=True)
class Sealed:
    """A value encrypted under ``key_id``; unreadable for good once that key is shredded."""

    key_id: str
    ciphertext: bytes

    @property
    def scope(self) -> KeyScope:
        return KeyScope.parse(self.key_id)

    def to_json(self) -> dict[str, str]:
        return {"key_id": self.key_id, "ciphertext": base64.b64encode(self.ciphertext).decode()}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Sealed:
        """Raises ValueError on anything but ``{key_id, ciphertext}`` with base64 ciphertext."""
        if not isinstance(data, dict) or set(data) != {"key_id", "ciphertext"}:
            raise ValueError("sealed data is an object with key_id and ciphertext")
        try:
            return cls(str(data["key_id"]), base64.b64decode(data["ciphertext"], validate=True))
        except (binascii.Error, TypeError):
            raise ValueError("ciphertext is not base64") from None

    def __repr__(self) -> str:  # never print ciphertext into logs
        return f"Sealed(key_id={self.key_id!r})"


def sealed_text(stored: object) -> Sealed | str | None:
    """A sealed text as a read model's JSON keeps it (``Sealed.to_json``); a plain text, in a row
    kept before the field was sealed, stays as it is."""
    if isinstance(stored, dict):
        return Sealed.from_json(stored)
    return None if stored is None else str(stored)


class Purged:
    """What a sealed value reads as after its key was shredded."""

    _instance: Purged | None = None

    def __new__(cls) -> Purged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PURGED"

    def __bool__(self) -> bool:
        return False


PURGED = Purged()
