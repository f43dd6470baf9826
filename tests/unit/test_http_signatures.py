"""Agencies' HTTP requests are signed as RFC 9421 says: the engine reproduces the RFC's own
Ed25519 test vector, the steps docs/agencies.md gives for other languages make the same
signature as the client, and a signature holds only for its method, path, query and body,
within its window, with a nonce."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)

from shared.http_signatures import HttpSignatureError, sign_request, verify_request
from shared.wire import KeyPair

# -- RFC 9421, Appendix B.1.4 (test-key-ed25519) and B.2.6 (signing a request using ed25519) ----
RFC_SEED = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU"  # the JWK's "d", base64url
RFC_PUBLIC = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"  # its "x"
RFC_HEADERS = {
    "Host": "example.com",
    "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Digest": (
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
    ),
    "Content-Length": "18",
}
RFC_BODY = b'{"hello": "world"}'
RFC_SIGNATURE_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
RFC_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
)


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Request:
    def __init__(self, method: str, url: str, headers: dict[str, str]):
        self.method, self.url, self.headers = method, url, dict(headers)


def test_the_engine_signs_the_rfc_9421_ed25519_test_request_exactly_as_the_rfc_prints_it():
    request = _Request("POST", "http://example.com/foo?param=Value&Pet=dog", RFC_HEADERS)
    private = Ed25519PrivateKey.from_private_bytes(_unb64url(RFC_SEED))
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={"test-key-ed25519": private}),
    )
    signer.sign(
        request,
        key_id="test-key-ed25519",
        created=datetime.fromtimestamp(1618884473, UTC),
        label="sig-b26",
        include_alg=False,
        covered_component_ids=("date", "@method", "@path", "@authority", "content-type", "content-length"),
        use_existing_digest=True,  # the test request carries its own (uncovered) Content-Digest
    )
    assert request.headers["Signature-Input"] == RFC_SIGNATURE_INPUT
    assert request.headers["Signature"] == RFC_SIGNATURE  # Ed25519 is deterministic


def test_the_engine_verifies_the_rfc_9421_ed25519_test_signature_and_no_changed_one():
    public = Ed25519PublicKey.from_public_bytes(_unb64url(RFC_PUBLIC))
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={"test-key-ed25519": public}, private_keys={}),
    )
    headers = {**RFC_HEADERS, "Signature-Input": RFC_SIGNATURE_INPUT, "Signature": RFC_SIGNATURE}
    request = _Request("POST", "http://example.com/foo?param=Value&Pet=dog", headers)
    [result] = verifier.verify(request, max_age=None)
    assert result.parameters["keyid"] == "test-key-ed25519"
    with pytest.raises(InvalidSignature):
        verifier.verify(_Request("POST", "http://example.com/bar", headers), max_age=None)


def test_a_content_digest_is_sha_256_or_sha_512_of_the_exact_body_as_rfc_9530_shows():
    # RFC 9530's own example value, and the sha-512 of RFC 9421's test request.
    assert (
        base64.b64encode(hashlib.sha256(RFC_BODY).digest()).decode()
        == "X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
    )
    keys = KeyPair.generate()
    headers = sign_request(keys.signing_private_key, keys.key_id, "POST", "/api/shares", RFC_BODY)
    assert headers["Content-Digest"] == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"


# -- Keten's profile -------------------------------------------------------------------------------


def _now() -> datetime:
    """Now, in whole seconds (as ``created`` is); taken in each test, not at collection."""
    return datetime.now(UTC).replace(microsecond=0)


BODY = b'{"schema_version":1,"case_id":"5c2e0f0e-8f4b-4d0b-9a54-3f7c4c2b1a10"}'


def _sign(keys: KeyPair, method: str = "POST", target: str = "/api/shares", body: bytes = BODY, **kwargs):
    return sign_request(keys.signing_private_key, keys.key_id, method, target, body, **kwargs)


def _verify(
    keys: KeyPair, headers, method: str = "POST", url: str = "http://gw/api/shares", body: bytes = BODY
):
    return verify_request(
        method,
        url,
        list(headers.items()),
        body,
        lambda key_id: keys.signing_public_key if key_id == keys.key_id else None,
        window=60,
        clock_skew=10,
    )


def test_the_steps_in_the_agencies_guide_make_the_same_signature_as_the_client():
    """docs/agencies.md, section 6, step by step, with nothing but hashlib and an Ed25519 key."""
    keys, now = KeyPair.generate(), _now()
    created, nonce = int(now.timestamp()), "b2s2ZmZ3bXJ0a3N3dGZ3"
    headers = _sign(keys, target="/api/cases/5c2e/close?lang=en", created=now, nonce=nonce)

    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(BODY).digest()).decode() + ":"
    params = (
        '("@method" "@path" "@query" "content-digest")'
        f';created={created};keyid="{keys.key_id}";alg="ed25519";nonce="{nonce}"'
    )
    base = (
        '"@method": POST\n'
        '"@path": /api/cases/5c2e/close\n'
        '"@query": ?lang=en\n'
        f'"content-digest": {digest}\n'
        f'"@signature-params": {params}'
    )
    signature = Ed25519PrivateKey.from_private_bytes(keys.signing_private_key).sign(base.encode())
    assert headers["Content-Digest"] == digest
    assert headers["Signature-Input"] == f"keten={params}"
    assert headers["Signature"] == f"keten=:{base64.b64encode(signature).decode()}:"


def test_a_signed_request_verifies_and_names_its_key_time_and_nonce():
    keys, now = KeyPair.generate(), _now()
    signed = _verify(keys, _sign(keys, created=now, nonce="n" * 22))
    assert (signed.key_id, signed.created, signed.nonce) == (keys.key_id, now, "n" * 22)
    assert signed.remember_until == now + timedelta(seconds=80), "window and skew either way"
    # A GET has an empty body; its digest is that of no bytes.
    get = _sign(keys, "GET", "/api/deferrals/due", b"")
    assert _verify(keys, get, "GET", "http://gw/api/deferrals/due", b"").key_id == keys.key_id


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"method": "PUT"}, "bad_signature"),
        ({"url": "http://gw/api/shares/other"}, "bad_signature"),
        ({"url": "http://gw/api/shares?as=other"}, "bad_signature"),
        ({"body": BODY.replace(b"5c2e", b"0000")}, "bad_content_digest"),
    ],
)
def test_a_signature_holds_only_for_its_method_path_query_and_body(change, code):
    keys = KeyPair.generate()
    with pytest.raises(HttpSignatureError) as refused:
        _verify(keys, _sign(keys), **change)
    assert refused.value.code == code


def test_a_request_signed_before_the_window_or_too_far_ahead_is_refused():
    keys, now = KeyPair.generate(), _now()
    for created in (now - timedelta(seconds=75), now + timedelta(seconds=15)):
        with pytest.raises(HttpSignatureError) as refused:
            _verify(keys, _sign(keys, created=created))
        assert refused.value.code == "signature_expired"
    # Within the window, and a few seconds ahead (clock skew): accepted.
    for created in (now - timedelta(seconds=50), now + timedelta(seconds=5)):
        assert _verify(keys, _sign(keys, created=created)).created == created


def test_a_signature_by_another_or_an_unknown_key_or_without_headers_is_refused():
    keys, other = KeyPair.generate(), KeyPair.generate()
    forged = sign_request(other.signing_private_key, keys.key_id, "POST", "/api/shares", BODY)
    with pytest.raises(HttpSignatureError, match="bad_signature"):
        _verify(keys, forged)
    with pytest.raises(HttpSignatureError, match="bad_signature"):
        _verify(keys, _sign(other))
    with pytest.raises(HttpSignatureError, match="signature_missing"):
        _verify(keys, {"Content-Type": "application/json"})


def test_a_signature_without_a_nonce_or_not_covering_the_digest_is_refused():
    keys = KeyPair.generate()
    private = Ed25519PrivateKey.from_private_bytes(keys.signing_private_key)
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={keys.key_id: private}),
    )
    without_digest = _Request("POST", "http://gw/api/shares", {})
    signer.sign(
        without_digest,
        key_id=keys.key_id,
        nonce="n" * 22,
        covered_component_ids=("@method", "@path", "@query"),
    )
    with pytest.raises(HttpSignatureError, match="bad_signature"):
        _verify(keys, without_digest.headers)

    digest_but_no_nonce = _Request("POST", "http://gw/api/shares", {})
    signer.sign(
        digest_but_no_nonce,
        key_id=keys.key_id,
        covered_component_ids=("@method", "@path", "@query"),
        body=BODY,
    )
    with pytest.raises(HttpSignatureError) as refused:
        _verify(keys, digest_but_no_nonce.headers)
    assert refused.value.code == "nonce_missing"


def test_a_key_lookup_that_fails_is_raised_as_itself_not_taken_for_a_bad_signature():
    keys = KeyPair.generate()

    def registry_unreachable(key_id: str) -> bytes:
        raise ConnectionError("the registry's database is unreachable")

    with pytest.raises(ConnectionError):
        verify_request(
            "POST",
            "http://gw/api/shares",
            list(_sign(keys).items()),
            BODY,
            registry_unreachable,
            window=60,
            clock_skew=10,
        )
