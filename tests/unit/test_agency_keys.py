"""Agencies' keys: a signature counts only for its own target and body, from a valid key of the
agency; shared content opens only for its recipient."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keten_client.protocol import KeyPair, SignatureError, open_sealed, seal_for, sign, verify
from shared.agencies import AgencyRegistry
from shared.errors import NotAuthorised

TARGET = "gemeente-utrecht.data_sharing.request_share"
BODY = b'{"schema_version":1,"agency":"gemeente-utrecht"}'


def test_a_signature_holds_only_for_the_target_and_body_it_was_made_for():
    keys = KeyPair.generate()
    signature = sign(keys.signing_private_key, TARGET, BODY)
    verify(keys.signing_public_key, TARGET, BODY, signature)
    with pytest.raises(SignatureError):
        verify(keys.signing_public_key, "gemeente-utrecht.case_registration.close_case", BODY, signature)
    with pytest.raises(SignatureError):
        verify(keys.signing_public_key, TARGET, BODY + b" ", signature)
    with pytest.raises(SignatureError):
        verify(KeyPair.generate().signing_public_key, TARGET, BODY, signature)
    with pytest.raises(SignatureError):
        verify(keys.signing_public_key, TARGET, BODY, "not base64!")


def test_shared_content_opens_only_with_the_recipients_key():
    recipient, other = KeyPair.generate(), KeyPair.generate()
    sealed = seal_for(recipient.encryption_public_key, {"content": "Drie maanden huurachterstand."})
    assert "huurachterstand" not in sealed
    assert open_sealed(recipient.encryption_private_key, sealed) == {
        "content": "Drie maanden huurachterstand."
    }
    with pytest.raises(ValueError):
        open_sealed(other.encryption_private_key, sealed)


@pytest.fixture
def registry(memory_settings):
    return AgencyRegistry.for_settings(memory_settings)


def register(registry, agency="gemeente-utrecht"):
    keys = KeyPair.generate()
    registry.add_key(agency, keys.signing_public_key, keys.encryption_public_key)
    return keys


def test_the_registry_names_the_agency_whose_valid_key_signed(registry):
    keys = register(registry)
    assert registry.verify(keys.key_id, sign(keys.signing_private_key, TARGET, BODY), TARGET, BODY) == (
        "gemeente-utrecht"
    )


def test_an_unknown_key_a_missing_signature_and_a_forgery_are_all_refused(registry):
    keys = register(registry)
    forger = KeyPair.generate()
    cases = [
        (keys.key_id, sign(forger.signing_private_key, TARGET, BODY), "bad_signature"),
        (forger.key_id, sign(forger.signing_private_key, TARGET, BODY), "bad_signature"),
        (None, None, "signature_missing"),
        (keys.key_id, 42, "signature_missing"),
    ]
    for key_id, signature, code in cases:
        with pytest.raises(NotAuthorised) as refused:
            registry.verify(key_id, signature, TARGET, BODY)
        assert refused.value.code == code


def test_a_rotated_key_verifies_during_the_overlap_and_a_revoked_one_never(registry):
    old = register(registry)
    new = KeyPair.generate()
    registry.rotate("gemeente-utrecht", new.signing_public_key, new.encryption_public_key, timedelta(hours=1))
    assert registry.current_key("gemeente-utrecht").key_id == new.key_id
    assert registry.verify(old.key_id, sign(old.signing_private_key, TARGET, BODY), TARGET, BODY)

    newer = KeyPair.generate()
    registry.rotate("gemeente-utrecht", newer.signing_public_key, newer.encryption_public_key, timedelta(0))
    with pytest.raises(NotAuthorised):
        registry.verify(new.key_id, sign(new.signing_private_key, TARGET, BODY), TARGET, BODY)

    assert registry.revoke("gemeente-utrecht") == 1
    with pytest.raises(NotAuthorised):
        registry.verify(newer.key_id, sign(newer.signing_private_key, TARGET, BODY), TARGET, BODY)
    assert registry.current_key("gemeente-utrecht") is None
    assert len(registry.all_keys("gemeente-utrecht")) == 3, "keys are never deleted: the history stays"


def test_one_public_key_cannot_be_registered_for_two_agencies(registry):
    keys = register(registry, "gemeente-utrecht")
    with pytest.raises(ValueError):
        registry.add_key("kredietbank-utrecht", keys.signing_public_key, keys.encryption_public_key)


def test_the_current_keys_of_several_agencies_read_at_once_are_each_ones_current_key(registry):
    """What a relay round seals to (one statement for the round) is what a read per share gave:
    the newest valid key, none once revoked, none for an agency without keys."""
    register(registry)
    rotated = KeyPair.generate()
    registry.rotate("gemeente-utrecht", rotated.signing_public_key, rotated.encryption_public_key)
    for agency in ("kredietbank-utrecht", "woningcorporatie-mitros"):
        keys = KeyPair.generate()
        registry.add_key(agency, keys.signing_public_key, keys.encryption_public_key)
    registry.revoke("woningcorporatie-mitros")
    agencies = ["gemeente-utrecht", "kredietbank-utrecht", "woningcorporatie-mitros", "ggd-regio-utrecht"]
    current = registry.current_keys(agencies)
    assert current == {a: k for a in agencies if (k := registry.current_key(a)) is not None}
    assert current["gemeente-utrecht"].key_id == rotated.key_id
    assert set(current) == {"gemeente-utrecht", "kredietbank-utrecht"}
    assert registry.current_keys([]) == {}
