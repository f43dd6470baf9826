"""The benchmark's loader writes the rows the services write.

The same citizens (same BSNs, cases and share requests) are loaded twice on the real
PostgreSQL: once by ``loader.load`` (the first citizen through the services' code, the others
derived from its rows, by two worker processes) and once by ``loader.load_real`` (every citizen
through the services' code). Every table holds the same rows in both stores, once what is
random by design is put aside: ciphertexts (compared by what they open to, in each store with
its own keys), the time of each event, the trace ids, the wrapped keys (compared by whether
they unwrap) and the digests (each checked against the message its stored event makes). Each
citizen's overview, as the notification service answers it, is the same in both.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from eventsourcing.persistence import StoredEvent

from keten.bench import loader
from services.case_registration.application import CaseRegistrationUseCases
from services.data_sharing.application import DataSharingUseCases
from services.notification.application import NotificationUseCases
from shared.application import vault_for
from shared.config import Settings
from shared.contracts.envelope import encode_event, event_digest
from shared.db import close_postgres_datastores
from shared.pseudonym import pseudonymise
from shared.sealed import Sealed
from tests.conftest import secrets_env

pytestmark = pytest.mark.integration

CITIZENS, SHARES = 3, 6  # two shares each; citizens 1 and 2 are derived

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?\+00:?00")
_TRACE = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_SEALED = re.compile(
    r'\{"(?:k|key_id)":\s*"(?P<key>[^"]+)",\s*"(?:c|ciphertext)":\s*"(?P<ciphertext>[A-Za-z0-9+/=]+)"\}'
)


@pytest.fixture
def two_stores(postgres_dsn: str) -> Iterator[tuple[Settings, Settings]]:
    secrets = secrets_env()
    schemas = [f"test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    yield tuple(  # type: ignore[misc]
        Settings.from_env({"DATABASE_URL": postgres_dsn, "DATABASE_SCHEMA": schema, **secrets})
        for schema in schemas
    )
    conn = psycopg2.connect(postgres_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        for schema in schemas:
            close_postgres_datastores(schema)
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


def test_the_loader_writes_every_row_the_services_write_and_the_same_overview(two_stores):
    fast, real = two_stores
    run = uuid.uuid4().hex

    loaded = loader.load(fast, CITIZENS, SHARES, workers=2, run=run, chunk=1)
    loader.load_real(real, range(CITIZENS), SHARES // CITIZENS, run)

    fast_rows, real_rows = _rows(fast), _rows(real)
    assert set(fast_rows) == set(real_rows)
    for table in sorted(real_rows):
        assert fast_rows[table] == real_rows[table], table
    # Every citizen has their own rows: per share an event, a ledger line, a notification,
    # its delivery and its overview entry; per citizen a case in the overview and two keys.
    assert len(real_rows["data_sharing_events"]) == SHARES
    assert len(real_rows["notification_overview_entries"]) == SHARES
    assert len(real_rows["notification_overview_cases"]) == CITIZENS
    assert len(real_rows["keten_keys"]) == 2 * CITIZENS
    for settings in (fast, real):
        _digests_are_of_the_stored_events(settings)

    for bsn in loaded.bsns:
        subject = pseudonymise(bsn, fast.pseudonym_secret)
        fast_view, real_view = (_overview(settings, subject) for settings in (fast, real))
        assert fast_view == real_view
        assert len(fast_view["cases"][0]["shares"]) == SHARES // CITIZENS


def _rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every non-empty table's rows, normalised (see the module) and sorted."""
    vault = vault_for(settings)
    conn = psycopg2.connect(settings.database_url, options=f"-c search_path={settings.database_schema}")
    tables: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (settings.database_schema,),
            )
            for (table,) in cur.fetchall():
                cur.execute(f'SELECT * FROM "{table}"')
                columns = [d[0] for d in cur.description]
                rows = [
                    tuple(
                        _normal(vault, table, column, value)
                        for column, value in zip(columns, row, strict=True)
                    )
                    for row in cur.fetchall()
                ]
                if rows:
                    tables[table] = sorted(rows, key=repr)
    finally:
        conn.close()
    return tables


def _normal(vault: Any, table: str, column: str, value: Any) -> Any:
    if table == "keten_keys" and column == "wrapped_key":
        return "<key>" if value is None else "<key that unwraps>"
    if column == "digest":
        return "<digest>"  # checked against the stored events: _digests_are_of_the_stored_events
    if isinstance(value, memoryview):
        value = bytes(value).decode()
    if not isinstance(value, str):
        return value

    def opened(match: re.Match[str]) -> str:
        plaintext = vault.open(Sealed(match["key"], base64.b64decode(match["ciphertext"])))
        assert isinstance(plaintext, str | dict | list | int | bool), "a sealed value does not open"
        return f"<sealed under {match['key']}: {json.dumps(plaintext)}>"

    return _TRACE.sub("<trace>", _TIME.sub("<time>", _SEALED.sub(opened, value)))


def _digests_are_of_the_stored_events(settings: Settings) -> None:
    """Each ``*_received`` row's digest is that of the message its upstream's stored event at
    that position makes (``encode_event``), as a consumer computes it on receipt."""
    apps = {
        "case_registration": CaseRegistrationUseCases(settings),
        "data_sharing": DataSharingUseCases(settings),
    }
    conn = psycopg2.connect(settings.database_url, options=f"-c search_path={settings.database_schema}")
    checked = 0
    try:
        with conn.cursor() as cur:
            for follower in ("data_sharing", "notification"):
                cur.execute(f"SELECT stream, position, digest FROM {follower}_received")
                for stream, position, digest in cur.fetchall():
                    cur.execute(
                        f"SELECT originator_id, originator_version, topic, state FROM {stream}_events"
                        " WHERE notification_id = %s",
                        (position,),
                    )
                    originator, version, topic, state = cur.fetchone()
                    app = apps[stream]
                    event = app.mapper.to_domain_event(StoredEvent(originator, version, topic, bytes(state)))
                    message = encode_event(event, stream, position)
                    assert message is not None
                    assert event_digest(json.loads(message.body)) == digest
                    checked += 1
    finally:
        conn.close()
        for app in apps.values():
            app.close()
    assert checked == 2 * CITIZENS + CITIZENS + SHARES  # data_sharing: 1, notification: 2 + shares


def _overview(settings: Settings, subject: str) -> Any:
    notifications = NotificationUseCases(settings)
    try:
        view = notifications.overview_for(subject).to_json()
    finally:
        notifications.close()
    return json.loads(_TIME.sub("<time>", json.dumps(view)))
