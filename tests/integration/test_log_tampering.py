"""Tampering with stored events, straight in the database, is caught by ``keten log verify``
with the leaf it touched, and by the relay's own check of its log (the metric the alert
``KetenLogTampered`` watches). On PostgreSQL and on the embedded default's SQLite files."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from keten.cli.commands import main as keten
from services.case_registration.application import CaseRegistrationUseCases
from services.consent.application import ConsentUseCases
from shared.config import Settings
from shared.contracts.commands import GiveConsentSchema, RegisterCaseSchema
from shared.relay import EventRelay, RelayLoop
from tests.conftest import secrets_env
from tests.factories import case_command, consent_command, loaded, received

pytestmark = pytest.mark.integration


class Publisher:
    def publish(self, messages: list[Any], exchange: Any = None) -> None:
        pass


@pytest.fixture(params=["postgresql", "sqlite"])
def env(request: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    if request.param == "postgresql":
        schema = request.getfixturevalue("pg_schema")
        env = {"DATABASE_URL": request.getfixturevalue("postgres_dsn"), "DATABASE_SCHEMA": schema}
    else:
        env = {"KETEN_VAR_DIR": str(tmp_path / "var")}
    env |= {"AMQP_URI": "keten-memory://localhost/", **secrets_env()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # what `keten log verify` reads, as an operator sets it
    yield env


@pytest.fixture
def consent(env: dict[str, str]) -> Iterator[ConsentUseCases]:
    """consent with four consents given, each a leaf of its log (leaves 0-3), and a signed head."""
    settings = Settings.from_env(env)
    registration = CaseRegistrationUseCases(settings)
    consent = ConsentUseCases(settings)
    cases = [
        registration.register_case(loaded(RegisterCaseSchema, case_command(), settings)) for _ in range(4)
    ]
    for event in received(registration):
        consent.cases.apply(event)
    for case in cases:
        consent.give_consent(loaded(GiveConsentSchema, consent_command(str(case.case_id)), settings))
    relay = EventRelay(consent, "consent", Publisher())  # type: ignore[arg-type]
    relay.publish_pending()
    assert relay.log is not None and relay.log.size == 4
    relay.log.sign_head()
    yield consent
    consent.close()
    registration.close()


def leaf_positions(app: ConsentUseCases) -> list[int]:
    with app.sql.transaction(commit=False) as cur:
        rows = cur.execute("SELECT notification_id FROM consent_log_leaves ORDER BY leaf_index").fetchall()
    return [int(row[0]) for row in rows]


def events_table(app: ConsentUseCases) -> tuple[str, str]:
    """The events table and its position column, as a database administrator sees them."""
    recorder: Any = app.recorder
    if app.sql.dialect == "postgresql":
        return recorder.events_table, "notification_id"
    return recorder.events_table_name, "rowid"


def change(app: ConsentUseCases, position: int) -> None:
    table, column = events_table(app)
    with app.sql.transaction() as cur:
        [state] = cur.execute(f"SELECT state FROM {table} WHERE {column} = ?", (position,)).fetchone()
        changed = bytes(state).replace(b'"housing"', b'"income"')
        assert changed != bytes(state)
        cur.execute(f"UPDATE {table} SET state = ? WHERE {column} = ?", (changed, position))


def delete(app: ConsentUseCases, position: int) -> None:
    table, column = events_table(app)
    with app.sql.transaction() as cur:
        cur.execute(f"DELETE FROM {table} WHERE {column} = ?", (position,))


def swap(app: ConsentUseCases, first: int, second: int) -> None:
    table, column = events_table(app)
    with app.sql.transaction() as cur:
        cur.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (-1, first))
        cur.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (first, second))
        cur.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (second, -1))


def verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = keten(["log", "verify", "--service", "consent"])
    return code, capsys.readouterr().out


def failures_reported(app: ConsentUseCases) -> float | None:
    RelayLoop(app, "consent", app.settings).check_log()
    return REGISTRY.get_sample_value("keten_log_verification_failures", {"service": "consent"})


def test_an_untouched_log_verifies(consent, capsys):
    code, out = verify(capsys)
    assert code == 0, out
    assert "consent: verifies: 4 leaves, 4 checked against their events" in out
    assert failures_reported(consent) == 0


def test_a_changed_event_is_named_by_its_leaf(consent, capsys):
    change(consent, leaf_positions(consent)[1])
    code, out = verify(capsys)
    assert code == 1
    assert "consent: leaf 1: event_changed" in out
    assert failures_reported(consent) == 1


def test_a_deleted_event_is_named_by_its_leaf(consent, capsys):
    delete(consent, leaf_positions(consent)[2])
    code, out = verify(capsys)
    assert code == 1
    assert "consent: leaf 2: event_missing" in out
    assert failures_reported(consent) == 1


def test_two_events_swapped_are_named_by_their_leaves(consent, capsys):
    positions = leaf_positions(consent)
    swap(consent, positions[0], positions[3])
    code, out = verify(capsys)
    assert code == 1
    assert "consent: leaf 0: reordered: the event at position" in out and "is the one of leaf 3" in out
    assert "consent: leaf 3: reordered" in out
    assert failures_reported(consent) == 2


def test_a_leaf_rewritten_to_match_a_changed_event_breaks_the_signed_head(consent, capsys):
    change(consent, leaf_positions(consent)[1])
    with consent.sql.transaction() as cur:
        cur.execute("UPDATE consent_log_leaves SET leaf_hash = ? WHERE leaf_index = 1", ("00" * 32,))
    code, out = verify(capsys)
    assert code == 1
    assert "consent: log: head_mismatch: the leaves do not make the head of size 4" in out
