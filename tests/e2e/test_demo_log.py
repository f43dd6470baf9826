"""`keten demo` as the issue's reader runs it: it prints the tree head and the share's inclusion
proof, `keten log verify` passes on its platform, and after a tampering step fails naming the
share's leaf."""

from __future__ import annotations

import pytest

from keten.cli.commands import main as keten
from tests.conftest import secrets_env

pytestmark = pytest.mark.e2e


def test_the_demo_proves_its_share_and_catches_a_changed_stored_event(monkeypatch, capsys):
    for name, value in secrets_env().items():  # secrets in the shell win over var/secrets.json
        monkeypatch.setenv(name, value)
    assert keten(["demo", "--tamper"]) == 0
    out = capsys.readouterr().out
    # The demo's request is partly shared and partly refused: two decisions, two leaves.
    assert "Signed tree head of log 'data_sharing': 2 leaves at" in out
    assert "Inclusion proof: leaf 0" in out
    assert "Checked here: the audit path leads from the share's leaf to the signed root." in out
    assert "data_sharing: verifies: 2 leaves, 2 checked against their events" in out
    assert "data_sharing: leaf 0: event_changed: the event at position" in out
    assert "data_sharing: FAILS (1 finding(s))" in out
