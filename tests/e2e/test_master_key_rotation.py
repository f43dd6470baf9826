"""An operator rotates the master key of a platform holding a citizen's data: afterwards the
platform runs on the new key alone and the citizen still reads everything that was shared."""

from __future__ import annotations

import pytest
import requests

from keten.demo import CITIZEN, SHARED_SENTENCE, run_demo
from shared.config import generate_secret
from tests.support import keten, running_platform

pytestmark = pytest.mark.e2e


def test_after_a_master_key_rotation_the_citizen_still_reads_what_was_shared(embedded_env):
    with running_platform(embedded_env) as platform:
        run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())

    old_key, new_key = embedded_env["KETEN_MASTER_KEY"], generate_secret()
    rotating = {**embedded_env, "KETEN_MASTER_KEY": new_key, "KETEN_MASTER_KEY_PREVIOUS": old_key}
    before = keten("rewrap-keys", "--check", env=rotating)
    assert before.returncode == 1, "keys under the old master key are reported"

    rewrapped = keten("rewrap-keys", env=rotating)
    assert rewrapped.returncode == 0, rewrapped.stderr[-2000:]
    assert "0 under others" in rewrapped.stdout

    rotated = {**embedded_env, "KETEN_MASTER_KEY": new_key}
    assert keten("rewrap-keys", "--check", env=rotated).returncode == 0
    with running_platform(rotated) as platform:
        session = requests.post(
            f"{platform.base_url}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=10
        ).json()
        overview = requests.get(
            f"{platform.base_url}/api/citizen/overview",
            headers={"Authorization": f"Bearer {session['token']}"},
            timeout=10,
        ).json()
    [case] = overview["cases"]
    [share] = case["shares"]
    assert share["content"]["content"] == SHARED_SENTENCE
