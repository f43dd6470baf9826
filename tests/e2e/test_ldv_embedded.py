"""Logboek Dataverwerkingen on the embedded platform (`make run`): the records go to
`var/ldv.jsonl`, one a line, in the standard's fields; an agency's traceparent reaches the
records of the decision and of the notice the timer sends later."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from keten.demo import CITIZEN, SHARED_SENTENCE, run_demo
from shared.ldv import processing_log
from tests.integration.test_ldv_on_real_services import active_case, new_traceparent
from tests.support import eventually, running_platform, signed_request
from tests.unit.test_ldv import check_record

pytestmark = pytest.mark.e2e


def test_the_embedded_platform_writes_every_processing_of_a_share_to_var_ldv_jsonl(embedded_env):
    path = Path(embedded_env["KETEN_VAR_DIR"]) / "ldv.jsonl"
    with running_platform(embedded_env) as platform:
        base, utrecht = platform.base_url, platform.credentials()
        run_demo(base, out=lambda *_: None, credentials=utrecht)  # consent, share, overview, close
        case_id = active_case(base, utrecht)
        traceparent, trace_id, span_id = new_traceparent()
        share = {
            "schema_version": 1,
            "case_id": case_id,
            "subject_bsn": CITIZEN["bsn"],
            "to_agencies": ["kredietbank-utrecht"],
            "categories": ["debts"],
            "purpose": "debt_assistance",
            "content": SHARED_SENTENCE,
            "form": "written",
        }

        def shared() -> bool:
            request = {**share, "request_id": str(uuid.uuid4())}  # a new request at each try
            answer = signed_request(
                "POST", base, "/api/shares", request, utrecht, headers={"traceparent": traceparent}
            )
            return answer.status_code == 200 and answer.json()["decisions"][0]["outcome"] == "shared"

        eventually(shared, timeout=20, interval=0.5)

        def in_trace() -> set[str]:
            processing_log(platform.settings).flush()
            lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
            return {r["name"] for r in lines if r["trace_id"] == trace_id}

        # The notice goes out by the timer, a little later, in the same trace.
        eventually(lambda: {"share allowed", "subject notified"} <= in_trace(), timeout=30)
        register = processing_log(platform.settings).register
        records = [json.loads(line) for line in path.read_text().splitlines()]

    names = {r["name"] for r in records}
    assert {"consent recorded", "share allowed", "subject notified", "overview read by the subject"} <= names
    for record in records:
        check_record(record, register)
    [decided] = [r for r in records if r["trace_id"] == trace_id and r["name"] == "share allowed"]
    assert decided["parent_span_id"] == span_id
    text = path.read_text()
    assert CITIZEN["bsn"] not in text and CITIZEN["name"] not in text and SHARED_SENTENCE not in text
