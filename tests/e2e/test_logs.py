"""The logs of a whole share on the embedded platform, as an operator would search them: one
correlation id from the HTTP request to every consumer, and no trace of the citizen."""

from __future__ import annotations

import json

import pytest
import requests

from keten.demo import CITIZEN, SHARED_SENTENCE, run_demo
from tests.support import json_logs, running_platform

pytestmark = pytest.mark.e2e

WRONG_BSN = "999990018"  # a citizen's typo: fails the eleven-test, must not be echoed either


@pytest.fixture
def log_lines():
    with json_logs() as stream:
        yield stream


def test_a_share_is_followed_by_one_correlation_id_and_no_log_line_holds_personal_data(
    embedded_env, log_lines
):
    with running_platform(embedded_env) as platform:
        run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())
        refused = requests.post(
            f"{platform.base_url}/api/citizen/session", json={"bsn": WRONG_BSN}, timeout=10
        )
        assert refused.status_code == 400

    text = log_lines.getvalue()
    for value in (*CITIZEN.values(), SHARED_SENTENCE, WRONG_BSN, "Sanne", "Lindelaan"):
        assert value.lower() not in text.lower(), "personal data must never reach the logs"

    records = [json.loads(line) for line in text.splitlines()]
    [share_request] = [
        r for r in records if r.get("entrypoint") == "request_share" and r.get("status") == 200
    ]
    trail = {
        (r["service"], r["message"].split(" ")[0])
        for r in records
        if r["correlation_id"] == share_request["correlation_id"]
    }
    assert {
        ("gateway", "POST"),
        ("data_sharing", "rpc"),
        ("data_sharing", "published"),
        ("notification", "handle_data_shared"),
        ("retention", "handle_data_shared"),
    } <= trail
