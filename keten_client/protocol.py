"""The wire protocol (signing, sealing), as the agencies' client has always offered it; it lives in
the platform's library, ``shared.wire``, which both sides use."""

from shared.wire import (
    CONTENT_INFO,
    HTTP_KEY_ID_HEADER,
    HTTP_SIGNATURE_HEADER,
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    SUITE,
    Credentials,
    KeyPair,
    SignatureError,
    b64,
    key_id_for,
    open_sealed,
    seal_for,
    sign,
    signing_input,
    unb64,
    verify,
)

__all__ = [
    "CONTENT_INFO",
    "HTTP_KEY_ID_HEADER",
    "HTTP_SIGNATURE_HEADER",
    "KEY_ID_HEADER",
    "SIGNATURE_HEADER",
    "SUITE",
    "Credentials",
    "KeyPair",
    "SignatureError",
    "b64",
    "key_id_for",
    "open_sealed",
    "seal_for",
    "sign",
    "signing_input",
    "unb64",
    "verify",
]
