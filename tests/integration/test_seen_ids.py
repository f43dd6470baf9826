"""The store of ids seen before (nonces of signed requests, ended sessions): an id counts as new
once per scope until it expires, on the embedded SQLite file and on PostgreSQL alike, and what
one store remembers, another opened on the same database (a restart, another replica) knows."""

from __future__ import annotations

import time

import pytest
from eventsourcing.sqlite import SQLiteDatastore

from shared.config import Settings
from shared.db import PgDatastore, SqlStore, sqlite_path
from shared.seen import SeenIds
from tests.conftest import secrets_env


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path):
    if request.param == "sqlite":
        return Settings.from_env({"KETEN_VAR_DIR": str(tmp_path / "var"), **secrets_env()})
    dsn, schema = request.getfixturevalue("postgres_dsn"), request.getfixturevalue("pg_schema")
    return Settings.from_env({"DATABASE_URL": dsn, "DATABASE_SCHEMA": schema, **secrets_env()})


def test_an_id_is_new_once_per_scope_until_it_expires(settings):
    seen = SeenIds.for_settings(settings)
    later = time.time() + 60
    assert seen.first_sighting("http-nonce:key-a", "nonce-1", later) is True
    assert seen.first_sighting("http-nonce:key-a", "nonce-1", later) is False
    assert seen.first_sighting("http-nonce:key-b", "nonce-1", later) is True, "scopes are apart"
    assert seen.seen("http-nonce:key-a", "nonce-1") and not seen.seen("http-nonce:key-a", "nonce-2")

    # An expired id is new again (its window is over), and purging forgets it for good.
    assert seen.first_sighting("ended", "session-1", time.time() - 1) is True
    assert not seen.seen("ended", "session-1")
    assert seen.first_sighting("ended", "session-1", later) is True
    assert seen.forget_expired(now=later + 1) == 3


def test_what_one_store_remembers_a_store_opened_anew_knows(settings):
    SeenIds.for_settings(settings).remember("citizen-session-ended", "session-9", time.time() + 60)
    datastore = _reopened(settings)
    try:
        fresh = SeenIds(SqlStore(datastore))
        assert fresh.seen("citizen-session-ended", "session-9")
        assert fresh.first_sighting("citizen-session-ended", "session-9", time.time() + 60) is False
    finally:
        datastore.close()


def _reopened(settings):
    """A new connection pool (PostgreSQL) or file handle (SQLite) on the same database."""
    if settings.uses_postgres:
        return PgDatastore(settings.database_url, settings.database_schema)
    return SQLiteDatastore(sqlite_path(settings, "platform"), lock_timeout=10)
