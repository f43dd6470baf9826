"""Rotating the master key: every data key moves under the new key, nothing sealed is lost."""

from uuid import uuid4

import pytest
from eventsourcing.sqlite import SQLiteDatastore

from shared.crypto import KeyStore, Vault
from shared.db import SqlStore
from shared.sealed import PURGED, KeyScope

OLD, NEW = b"o" * 32, b"n" * 32


@pytest.fixture
def store():
    return SqlStore(SQLiteDatastore(f"file:keys-{uuid4().hex}?mode=memory&cache=shared"))


def sealed_under_the_old_key(store, count=3):
    keys = KeyStore(store, OLD)
    keys.create_table()
    vault = Vault(keys)
    return [(vault.seal(KeyScope(uuid4()), f"value {i}")) for i in range(count)]


def test_during_a_rotation_keys_wrapped_under_either_master_key_open(store):
    old_values = sealed_under_the_old_key(store)
    rotating = Vault(KeyStore(store, NEW, previous_master_key=OLD))
    new_value = rotating.seal(KeyScope(uuid4()), "sealed during the rotation")
    assert [rotating.open(v) for v in old_values] == ["value 0", "value 1", "value 2"]
    assert rotating.open(new_value) == "sealed during the rotation"
    assert rotating.keys.count_by_master_key() == {
        KeyStore(store, OLD).master_key_id: 3,
        rotating.keys.master_key_id: 1,
    }


def test_rewrapping_moves_every_live_key_under_the_new_master_key_and_the_old_one_is_no_longer_needed(store):
    old_values = sealed_under_the_old_key(store, count=5)
    shredded_case = uuid4()
    Vault(KeyStore(store, OLD)).seal(KeyScope(shredded_case), "purged before the rotation")
    Vault(KeyStore(store, OLD)).shred(shredded_case)

    rotating = KeyStore(store, NEW, previous_master_key=OLD)
    assert rotating.rewrap(batch_size=2) == 5
    assert rotating.rewrap() == 0, "a second run finds nothing left to do"
    assert rotating.count_by_master_key() == {rotating.master_key_id: 5}

    after = Vault(KeyStore(store, NEW))
    assert [after.open(v) for v in old_values] == [f"value {i}" for i in range(5)]
    assert after.keys.load(str(shredded_case)) is PURGED
    with pytest.raises(RuntimeError, match="master key"):
        KeyStore(store, OLD).load(old_values[0].key_id)


def test_a_wrong_previous_key_is_reported_not_guessed(store):
    old_values = sealed_under_the_old_key(store, count=1)
    confused = KeyStore(store, NEW, previous_master_key=b"x" * 32)
    with pytest.raises(RuntimeError, match="KETEN_MASTER_KEY_PREVIOUS"):
        confused.load(old_values[0].key_id)
