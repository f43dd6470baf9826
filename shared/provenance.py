"""Proof of origin for the platform's own events: each service signs what it publishes.

Every event the relay publishes on ``keten.events`` carries an Ed25519 signature of its exact
body by its service's key (headers ``keten-key-id`` and ``keten-signature``); a page of events
served to a consumer that catches up a gap is signed the same way. A consumer verifies the
signature before it reads anything else: an unsigned or badly signed message is dead-lettered
(``unsigned``, ``bad_signature``) and changes nothing.

The keys are derived from the platform's master key (HKDF-SHA256, one key per service name), so
no operator has a key to generate, distribute or rotate apart from the master key, and the
embedded platform, Compose, Kubernetes and the tests' throw-away vhosts need nothing new.

What this proves, and what it does not:

- It proves that an event was made by a process holding the platform's master key, and that
  nobody changed it on the way (broker, dead-letter queue, a replay through the management UI).
  Agencies, a leaked ``AMQP_URI``, a broker operator, or anything else that can publish to
  ``keten.events`` but does not hold the master key, cannot make an event that any service
  accepts.
- It does not prove *which* service made it. Every service process holds the same master key
  (and the same database), so each can derive every service's key: a compromised process of one
  service can forge events of all of them. Separate keys per service would only help together
  with separate secrets and separate databases per service; the wire format (a key id per
  signature) allows that later without changing consumers.
- It proves nothing about completeness or order; that is the chain of positions in the envelope
  (``shared.contracts.envelope``) and the consumer's gap check (``shared.consumer``).

During a master key rotation (``KETEN_MASTER_KEY_PREVIOUS`` set) events are signed with the
current key and verified with either.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.config import Settings
from shared.errors import NotAuthorised
from shared.wire import KEY_ID_HEADER, SIGNATURE_HEADER, SignatureError, b64, key_id_for, unb64

#: What a signature covers, besides the bytes: an event or a page of caught-up events.
EVENT_CONTEXT = b"keten event v1\n"
PAGE_CONTEXT = b"keten event page v1\n"

__all__ = ["KEY_ID_HEADER", "SIGNATURE_HEADER", "EventKeys", "Signature"]


@dataclass(frozen=True)
class Signature:
    key_id: str
    signature: str

    def headers(self) -> dict[str, str]:
        return {KEY_ID_HEADER: self.key_id, SIGNATURE_HEADER: self.signature}


class EventKeys:
    """The services' event keys under the current (and, during a rotation, the previous)
    master key: sign as one service, verify as any consumer."""

    def __init__(self, master_key: bytes, previous_master_key: bytes | None = None):
        self._signing: dict[str, tuple[Ed25519PrivateKey, str]] = {}
        self._masters = [master_key] + ([previous_master_key] if previous_master_key else [])
        #: key id -> (service, public key); filled per service on first use.
        self._verifying: dict[str, tuple[str, Ed25519PublicKey]] = {}
        self._services: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> EventKeys:
        return cls(settings.master_key, settings.previous_master_key)

    # -- signing --------------------------------------------------------------------------------
    def sign(self, service: str, body: bytes, context: bytes = EVENT_CONTEXT) -> Signature:
        if service not in self._signing:
            key = _derive(self._masters[0], service)
            public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            self._signing[service] = (key, key_id_for(public))
        key, key_id = self._signing[service]
        return Signature(key_id, b64(key.sign(context + body)))

    # -- verifying ------------------------------------------------------------------------------
    def signer(self, key_id: object, signature: object, body: bytes, context: bytes = EVENT_CONTEXT) -> str:
        """The service whose key signed ``body``; ``NotAuthorised`` (``unsigned`` or
        ``bad_signature``) otherwise."""
        if not isinstance(key_id, str) or not isinstance(signature, str) or not key_id or not signature:
            raise NotAuthorised("unsigned", "the event carries no signature of a Keten service")
        found = self._verifying.get(key_id)
        if found is None:
            raise NotAuthorised("bad_signature", "the event is not signed by a Keten service's key")
        service, public = found
        try:
            public.verify(unb64(signature), context + body)
        except (InvalidSignature, SignatureError, ValueError):
            raise NotAuthorised("bad_signature", "the event is not signed by a Keten service's key") from None
        return service

    def know(self, *services: str) -> EventKeys:
        """Makes the keys of ``services`` verifiable (derived once each)."""
        with self._lock:
            for service in services:
                if service in self._services:
                    continue
                for master in self._masters:
                    public = _derive(master, service).public_key()
                    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
                    self._verifying[key_id_for(raw)] = (service, public)
                self._services.add(service)
        return self


def _derive(master_key: bytes, service: str) -> Ed25519PrivateKey:
    seed = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"keten event signing",
        info=f"keten event key v1 {service}".encode(),
    ).derive(master_key)
    return Ed25519PrivateKey.from_private_bytes(seed)
