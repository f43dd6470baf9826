"""Agencies' HTTP requests, signed as HTTP Message Signatures (RFC 9421) say, with the body
bound by ``Content-Digest`` (RFC 9530); on ``http-message-signatures``, which both sides use.

What Keten asks of a signature (``docs/agencies.md``, section 6, gives the same steps for Java,
.NET and Node):

- one signature, Ed25519 (``alg="ed25519"``) with the agency's key (``keyid`` = its key id);
- covering ``"@method" "@path" "@query" "content-digest"``: the body cannot be sent to another
  route or case, and a changed body breaks the digest. The authority and scheme are left out so
  that a TLS-terminating proxy in front of the gateway changes nothing;
- ``created`` (Unix seconds) and a fresh random ``nonce``: the gateway refuses a request older
  than its window (``KETEN_SIGNATURE_WINDOW``), signed in the future beyond the allowed clock
  skew, or whose nonce it has seen before (``shared.seen``). A request is signed once; a retry
  is signed again.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

#: What every agency request's signature covers, in this order.
COVERED_COMPONENTS = ("@method", "@path", "@query", "content-digest")
#: The signature's label in ``Signature-Input`` and ``Signature`` (any label is accepted).
LABEL = "keten"
ALGORITHM = "ed25519"
#: A nonce: 16 to 128 characters of base64url or hex; ``secrets.token_urlsafe(16)`` gives 22.
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


class HttpSignatureError(Exception):
    """A request whose signature is missing, stale, replayed or does not verify; ``code`` says
    which (for the caller), the message says why without quoting the request."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass
class _Message:
    """The parts of a request RFC 9421 signs: the library reads ``method``, ``url``, ``headers``."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


class _LookedUpKeys(HTTPSignatureKeyResolver):
    """Public keys looked up by key id (in the agencies' registry) as the verifier asks. The
    library turns any error of the lookup into "invalid signature"; a lookup that failed (the
    registry's database is unreachable) is kept here and raised as itself instead."""

    def __init__(self, public_key: Callable[[str], Ed25519PublicKey | None]):
        self.public_key = public_key
        self.failure: Exception | None = None

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        try:
            return self.public_key(key_id)
        except Exception as exc:
            self.failure = exc
            raise

    def resolve_private_key(self, key_id: str) -> Any:
        raise KeyError("verifying only")


def sign_request(
    private_key: bytes,
    key_id: str,
    method: str,
    target: str,
    body: bytes,
    *,
    created: datetime | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers that sign a request: ``Content-Digest``, ``Signature-Input``, ``Signature``.

    ``private_key`` is the agency's raw 32-byte Ed25519 seed; ``target`` the path with its query
    (``/api/cases?x=1``); ``body`` the exact bytes sent (empty for a GET).
    """
    message = _Message(method.upper(), "https://gateway" + target)
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(
            public_keys={}, private_keys={key_id: Ed25519PrivateKey.from_private_bytes(private_key)}
        ),
    )
    signer.sign(
        message,
        key_id=key_id,
        created=created or datetime.now(UTC),
        nonce=nonce or secrets.token_urlsafe(16),
        label=LABEL,
        covered_component_ids=COVERED_COMPONENTS,
        body=body,
    )
    return dict(message.headers)


@dataclass(frozen=True)
class VerifiedRequest:
    """A request whose signature verified: by which key, when signed, and its nonce, which
    must be remembered (and refused when seen again) until ``remember_until``."""

    key_id: str
    created: datetime
    nonce: str
    remember_until: datetime


def verify_request(
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    public_key: Callable[[str], bytes | None],
    *,
    window: float,
    clock_skew: float,
) -> VerifiedRequest:
    """Checks a request's RFC 9421 signature as Keten asks it (module doc); returns who signed
    it, or raises ``HttpSignatureError``. Whether the nonce is new is the caller's to check.

    ``url`` is the request's absolute URL as received (only its path and query are covered);
    ``public_key`` gives a key id's raw Ed25519 public key, or ``None`` if it is unknown or no
    longer valid.
    """
    message = _Message(method.upper(), url, dict(_combined(headers)))
    if not message.headers.get("signature-input") or not message.headers.get("signature"):
        raise HttpSignatureError("signature_missing", "a request must carry Signature-Input and Signature")

    def key(key_id: str) -> Ed25519PublicKey | None:
        raw = public_key(key_id)
        return Ed25519PublicKey.from_public_bytes(raw) if raw else None

    keys = _LookedUpKeys(key)
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=keys)
    verifier.max_clock_skew = timedelta(seconds=clock_skew)
    try:
        [result] = verifier.verify(
            message,
            max_age=timedelta(seconds=window),
            require_components=COVERED_COMPONENTS,
            body=body,
        )
    except (InvalidSignature, HTTPMessageSignaturesException, ValueError) as error:
        if keys.failure is not None:
            raise keys.failure from None
        raise _refusal(str(error)) from None
    created = datetime.fromtimestamp(int(result.parameters["created"]), UTC)
    if result.parameters.get("alg") != ALGORITHM:
        raise HttpSignatureError("bad_signature", 'the signature must name alg="ed25519"')
    nonce = result.nonce
    if not isinstance(nonce, str) or not _NONCE.match(nonce):
        raise HttpSignatureError(
            "nonce_missing", "the signature needs a nonce of 16 to 128 base64url characters"
        )
    return VerifiedRequest(
        key_id=str(result.parameters["keyid"]),
        created=created,
        nonce=nonce,
        remember_until=created + timedelta(seconds=window + 2 * clock_skew),
    )


def _combined(headers: Iterable[tuple[str, str]]) -> Iterable[tuple[str, str]]:
    """Header lines by lower-case name, repeated ones joined as HTTP joins them."""
    joined: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        joined[lower] = f"{joined[lower]}, {value}" if lower in joined else value
    return joined.items()


def _refusal(reason: str) -> HttpSignatureError:
    """The library's reason, as one of our codes; its text is not passed on (it could quote
    the request)."""
    lowered = reason.lower()
    if "in the future" in lowered or "maximum allowable age" in lowered or "expires" in lowered:
        return HttpSignatureError(
            "signature_expired",
            "the signature's created time is outside the accepted window; sign each request as it is sent",
        )
    if 'missing a required "created"' in lowered:
        return HttpSignatureError("signature_expired", "the signature needs a created time")
    if "was not covered" in lowered:
        return HttpSignatureError(
            "bad_signature", "the signature must cover " + " ".join(f'"{c}"' for c in COVERED_COMPONENTS)
        )
    if "digest" in lowered:
        return HttpSignatureError(
            "bad_content_digest", "the body does not match a signed Content-Digest (sha-256 or sha-512)"
        )
    return HttpSignatureError("bad_signature", "the signature does not verify with a valid key")
