from uuid import uuid4

import pytest
from eventsourcing.sqlite import SQLiteDatastore

from shared.crypto import KeyStore, ScopeShreddedError, Vault
from shared.db import SqlStore
from shared.sealed import PURGED, KeyScope

MASTER = b"m" * 32


@pytest.fixture
def vault():
    store = SqlStore(SQLiteDatastore(f"file:keys-{uuid4().hex}?mode=memory&cache=shared"))
    keys = KeyStore(store, MASTER)
    keys.create_table()
    return Vault(keys)


def test_sealed_values_open_again_and_hide_their_plaintext(vault):
    case = uuid4()
    sealed = vault.seal(KeyScope(case, "a" * 32), {"name": "Sanne de Vries"})
    assert b"Sanne" not in sealed.ciphertext
    assert "Sanne" not in repr(sealed)
    assert vault.open(sealed) == {"name": "Sanne de Vries"}


def test_shredding_a_case_makes_every_value_of_the_case_read_as_purged(vault):
    case, other = uuid4(), uuid4()
    of_case = [vault.seal(KeyScope(case), "case text"), vault.seal(KeyScope(case, "b" * 32), "subject text")]
    of_other = vault.seal(KeyScope(other), "other case")
    assert vault.shred(case) == 2
    assert [vault.open(value) for value in of_case] == [PURGED, PURGED]
    assert vault.open(of_other) == "other case"


def test_a_shredded_scope_takes_no_new_personal_data(vault):
    case = uuid4()
    vault.seal(KeyScope(case), "x")
    vault.shred(case)
    with pytest.raises(ScopeShreddedError):
        vault.seal(KeyScope(case), "resurrected")
    with pytest.raises(ScopeShreddedError):
        vault.seal(KeyScope(case, "c" * 32), "also not under a new subject key")


def test_shredding_one_subject_leaves_the_others_of_the_case(vault):
    case = uuid4()
    child, sibling = (
        vault.seal(KeyScope(case, "c" * 32), "child"),
        vault.seal(KeyScope(case, "d" * 32), "sibling"),
    )
    vault.shred(case, "c" * 32)
    assert vault.open(child) is PURGED
    assert vault.open(sibling) == "sibling"


def test_another_process_sees_the_shred_once_it_forgets_its_cached_key(vault):
    case = uuid4()
    sealed = vault.seal(KeyScope(case), "text")
    elsewhere = Vault(vault.keys)  # another process, same key store
    assert elsewhere.open(sealed) == "text"
    vault.shred(case)
    elsewhere.forget(case)
    assert elsewhere.open(sealed) is PURGED


def test_keys_are_stored_wrapped_by_the_master_key(vault):
    case = uuid4()
    vault.seal(KeyScope(case), "text")
    wrong = KeyStore(vault.keys.store, b"w" * 32)
    with pytest.raises(RuntimeError, match="master key"):
        wrong.load(str(case))


def test_shredding_the_case_scope_alone_keeps_its_subjects_keys_but_takes_no_new_ones(vault):
    case = uuid4()
    minutes = vault.seal(KeyScope(case), "minutes")
    details = vault.seal(KeyScope(case, "e" * 32), "details")
    assert vault.shred_scope(KeyScope(case)) == 1
    assert vault.shred_scope(KeyScope(case)) == 0, "shredding twice changes nothing"
    assert vault.open(minutes) is PURGED
    assert vault.open(details) == "details"
    assert vault.keys.live_keys(case) == [f"{case}/{'e' * 32}"]
    with pytest.raises(ScopeShreddedError):
        vault.seal(KeyScope(case, "f" * 32), "a subject added after the purge")


def test_applications_never_snapshot_even_when_the_environment_asks(memory_settings, monkeypatch):
    from services.retention.application import RetentionUseCases

    monkeypatch.setenv("IS_SNAPSHOTTING_ENABLED", "y")
    assert RetentionUseCases(memory_settings).snapshots is None
