"""Keten's wire protocol for agencies: how a command is signed and how shared content is sealed,
and the credentials document an agency receives.

Both sides use this module: the platform to verify and to seal, the agencies' client
(``keten_client``, which hands these names on) to sign and to open. It needs nothing but
``cryptography`` and is small enough to port (``docs/agencies.md`` gives the same steps for Java
and .NET).

- A command is signed with the agency's Ed25519 key over ``target + "\\n" + body``: the target
  is, on AMQP, the routing key (``<agency>.<service>.<command>``), the message id and the
  ``created`` time, one per line (``command_target``), or, over HTTP, ``"<METHOD> <path>"``;
  the body is the exact bytes sent. Binding the target means a signed body cannot be replayed
  as another command or against another case in a URL; binding the id and time lets the
  platform refuse a copy of the same message later (``shared.commands``).
- Content shared with an agency travels sealed to that agency's X25519 key with HPKE (RFC 9180,
  base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM); only the recipient opens it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

#: Message headers (AMQP) and request headers (HTTP, ``X-Keten-...``) of a signed command.
KEY_ID_HEADER = "keten-key-id"
SIGNATURE_HEADER = "keten-signature"
#: AMQP header of a signed command: when it was made (ISO-8601 with a time zone), signed.
CREATED_HEADER = "keten-created"
HTTP_KEY_ID_HEADER = "X-Keten-Key-Id"
HTTP_SIGNATURE_HEADER = "X-Keten-Signature"

#: HPKE "info": binds a sealed value to its use, so it cannot be passed off as something else.
CONTENT_INFO = b"keten share content v1"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


class SignatureError(Exception):
    """A signature that is missing, malformed or does not verify."""


def signing_input(target: str, body: bytes) -> bytes:
    return target.encode() + b"\n" + body


def command_target(routing_key: str, message_id: str, created: str) -> str:
    """What an AMQP command's signature covers besides its body: routing key, message id and
    ``created`` (the header's exact text), one per line."""
    return f"{routing_key}\n{message_id}\n{created}"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        raise SignatureError("not base64") from None


def key_id_for(signing_public_key: bytes) -> str:
    """A key's id: derived from the public key, so both sides compute the same one."""
    return hashlib.sha256(signing_public_key).hexdigest()[:16]


def sign(private_key: bytes, target: str, body: bytes) -> str:
    """The base64 Ed25519 signature of a command; ``private_key`` is the raw 32-byte seed."""
    return b64(Ed25519PrivateKey.from_private_bytes(private_key).sign(signing_input(target, body)))


def verify(public_key: bytes, target: str, body: bytes, signature: str) -> None:
    """Raises ``SignatureError`` unless ``signature`` is the key's signature of target and body."""
    try:
        _verifier(public_key).verify(unb64(signature), signing_input(target, body))
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not verify") from None


@lru_cache(maxsize=256)
def _verifier(public_key: bytes) -> Ed25519PublicKey:
    """The key object of raw public key bytes, made once: the bytes are the key, so it never
    goes stale. Whether the key is still valid is the caller's question (read per batch)."""
    return Ed25519PublicKey.from_public_bytes(public_key)


def seal_for(public_key: bytes, value: Any) -> str:
    """``value`` as JSON, sealed to the holder of the X25519 ``public_key`` (base64)."""
    plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return b64(SUITE.encrypt(plaintext, X25519PublicKey.from_public_bytes(public_key), info=CONTENT_INFO))


def open_sealed(private_key: bytes, sealed: str) -> Any:
    """Opens what ``seal_for`` sealed; raises ``ValueError`` if it was not sealed to this key."""
    try:
        plaintext = SUITE.decrypt(
            unb64(sealed), X25519PrivateKey.from_private_bytes(private_key), info=CONTENT_INFO
        )
    except (InvalidTag, SignatureError, ValueError):
        raise ValueError("this content was not sealed to this key") from None
    return json.loads(plaintext)


@dataclass(frozen=True)
class KeyPair:
    """An agency's keys: Ed25519 to sign commands, X25519 to open what is shared with it."""

    signing_private_key: bytes
    encryption_private_key: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        signing = Ed25519PrivateKey.generate().private_bytes_raw()
        encryption = X25519PrivateKey.generate().private_bytes_raw()
        return cls(signing, encryption)

    @property
    def signing_public_key(self) -> bytes:
        key = Ed25519PrivateKey.from_private_bytes(self.signing_private_key).public_key()
        return key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def encryption_public_key(self) -> bytes:
        key = X25519PrivateKey.from_private_bytes(self.encryption_private_key).public_key()
        return key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return key_id_for(self.signing_public_key)


@dataclass(frozen=True)
class Credentials:
    """What ``keten agency add`` printed: where to connect, who you are, your private keys."""

    agency: str
    key_id: str
    signing_private_key: str
    encryption_private_key: str
    amqp_url: str = ""
    commands_exchange: str = "keten.commands"
    inbox_queue: str = ""

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Credentials:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in document.items() if k in names})

    @classmethod
    def load(cls, path: str | Path) -> Credentials:
        return cls.from_dict(json.loads(Path(path).read_text()))
