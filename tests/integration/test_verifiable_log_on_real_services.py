"""The verifiable logs on the production architecture (RabbitMQ, PostgreSQL, every service):
what an agency, a citizen, a supervisor and an operator each check, as they would."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from keten.cli.commands import main as keten
from keten.demo import CITIZEN, run_demo
from shared.tlog import LogKey, TreeHead, b64, head_signature_valid, unb64, verify_extends, verify_log
from tests.support import eventually, running_platform

pytestmark = pytest.mark.integration

LOGGED = ("consent", "data_sharing", "notification", "retention")


def test_shares_are_proven_in_signed_heads_and_the_logs_verify(production_env, tmp_path, monkeypatch, capsys):
    with running_platform(production_env) as platform:
        base = platform.base_url
        first = run_demo(base, out=lambda *_: None, credentials=platform.credentials())
        data_sharing_key = LogKey(platform.settings.master_key, "data_sharing").public

        # The agency: its receipt's proof holds against the platform's published log key.
        receipt = first.proof
        assert head_signature_valid(TreeHead.from_json(receipt["head"]), data_sharing_key)

        # The citizen: the JSON copy carries each share's proof, checked offline.
        token = requests.post(f"{base}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=10).json()
        copy = requests.get(
            f"{base}/inzage/copy",
            params={"format": "json"},
            headers={"Authorization": f"Bearer {token['token']}"},
            timeout=10,
        ).json()
        [case] = [c for c in copy["cases"] if c["case_id"] == first.case_id]
        assert case["shares"][0]["verifiable_log"]["inclusion"]["leaf_hash"]
        path = tmp_path / "keten-overzicht.json"
        path.write_text(json.dumps(copy))
        assert keten(["log", "verify", "--copy", str(path), "--key", b64(data_sharing_key)]) == 0
        assert "1 proof(s) verify against their signed heads" in capsys.readouterr().out
        case["shares"][0]["verifiable_log"]["inclusion"]["leaf_hash"] = b64(b"\x01" * 32)
        path.write_text(json.dumps(copy))
        assert keten(["log", "verify", "--copy", str(path)]) == 1
        assert "cases[0].shares[0].verifiable_log: the proof does not verify" in capsys.readouterr().out

        # A witness (a supervisor, an agency's client): the heads of every log, and later
        # heads proven to extend the ones it kept.
        kept = TreeHead.from_json(receipt["head"])
        run_demo(base, out=lambda *_: None, credentials=platform.credentials())

        def grown() -> dict[str, Any] | None:
            heads = requests.get(f"{base}/api/log/head", timeout=10).json()["logs"]
            by_log = {head["log"]: TreeHead.from_json(head) for head in heads}
            return by_log if by_log["data_sharing"].size > kept.size else None

        heads = eventually(grown, timeout=20)
        assert sorted(heads) == sorted(LOGGED)
        assert all(head_signature_valid(head) for head in heads.values())
        later = heads["data_sharing"]
        answer = requests.get(
            f"{base}/api/log/data_sharing/consistency",
            params={"from_size": kept.size, "to_size": later.size},
            timeout=10,
        ).json()
        assert verify_extends(kept, later, [unb64(node) for node in answer["proof"]])

        # The operator: every log against the stored events.
        for name in LOGGED:
            report = verify_log(platform.app(name))
            assert report.ok, [finding.line() for finding in report.findings]
        for name, value in production_env.items():
            monkeypatch.setenv(name, value)
        assert keten(["log", "verify"]) == 0
        assert "data_sharing: verifies" in capsys.readouterr().out
