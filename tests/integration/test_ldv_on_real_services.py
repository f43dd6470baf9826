"""Logboek Dataverwerkingen on this machine's RabbitMQ and PostgreSQL: an agency that sends a
``traceparent`` with its signed request (HTTP at the gateway, or an AMQP header on a command)
finds its trace id in the platform's processing log records of the share decision and on the
recipient's inbox message; the records are in the standard's fields, without the BSN."""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from keten.demo import CITIZEN, register_case_command, share_request_command
from keten_client import AgencyClient, CommandFailed, InboxMessage
from shared.ldv import processing_log
from tests.integration.test_agency_bus import KREDIETBANK, agencies  # noqa: F401 (a fixture)
from tests.support import eventually, running_platform, signed_post, signed_request
from tests.unit.test_ldv import check_record

pytestmark = pytest.mark.integration


def new_traceparent() -> tuple[str, str, str]:
    """An agency's own trace: (traceparent, trace id, span id)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def records_of(platform: Any, path: Path, trace_id: str) -> list[dict[str, Any]]:
    processing_log(platform.settings).flush()
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [record for record in lines if record["trace_id"] == trace_id]


def inbox_message(credentials: Any, name: str, kept: dict[str, InboxMessage]) -> InboxMessage | None:
    with AgencyClient(credentials) as client:
        kept.update((m.name, m) for m in client.inbox(timeout=1))
    return kept.get(name)


@pytest.fixture
def ldv_env(production_env, tmp_path):
    return {**production_env, "KETEN_LDV_FILE": str(tmp_path / "ldv.jsonl")}


def active_case(base: str, utrecht: Any) -> str:
    case_id = str(uuid.uuid4())
    assert signed_post(base, "/api/cases", register_case_command(case_id), utrecht).status_code == 201
    activated = signed_post(base, f"/api/cases/{case_id}/activate", {"schema_version": 1}, utrecht)
    assert activated.status_code == 200, activated.text
    return case_id


def test_an_http_share_with_a_traceparent_is_logged_in_the_agencys_trace_up_to_the_recipients_inbox(
    ldv_env,
    agencies,  # noqa: F811
):
    path = Path(ldv_env["KETEN_LDV_FILE"])
    with running_platform(ldv_env) as platform:
        base, utrecht = platform.base_url, platform.credentials()
        kredietbank = agencies(KREDIETBANK)
        case_id = active_case(base, utrecht)
        traceparent, trace_id, span_id = new_traceparent()

        def share() -> requests.Response | None:
            answer = signed_request(
                "POST",
                base,
                "/api/shares",
                share_request_command(case_id),
                utrecht,
                headers={"traceparent": traceparent},
            )
            shared = answer.status_code == 200 and answer.json()["decisions"][0]["outcome"] == "shared"
            return answer if shared else None  # data_sharing may not know the case yet

        eventually(share, timeout=30, interval=0.5)
        [decided] = eventually(
            lambda: [r for r in records_of(platform, path, trace_id) if r["name"] == "share allowed"],
            timeout=20,
        )
        kept: dict[str, InboxMessage] = {}
        received = eventually(lambda: inbox_message(kredietbank, "ShareReceived", kept), timeout=30)
        # The record's activity resolves at the gateway, to the version it was made under.
        activity = requests.get(decided["attributes"]["dpl.core.processing_activity_id"], timeout=10)

    check_record(decided, processing_log(platform.settings).register)
    assert decided["parent_span_id"] == span_id  # the agency's span called it
    assert (
        decided["attributes"]["dpl.core.foreign_operation.processor"] == "urn:keten:agency:gemeente-utrecht"
    )
    assert decided["resource"]["attributes"]["service.name"] == "keten-data_sharing"
    assert received.traceparent == f"00-{trace_id}-{decided['span_id']}-01"
    assert received.content["content"]  # the recipient opens it as before
    assert activity.status_code == 200, activity.text
    assert activity.json()["key"] == "share.debt_assistance.gemeente-utrecht"
    assert activity.json()["grounds"][0]["provision"].startswith("Wet gemeentelijke schuldhulpverlening")
    everything = path.read_text()
    assert CITIZEN["bsn"] not in everything and CITIZEN["name"] not in everything


def test_a_command_on_the_bus_with_a_traceparent_is_logged_in_the_agencys_trace(
    ldv_env,
    agencies,  # noqa: F811
):
    path = Path(ldv_env["KETEN_LDV_FILE"])
    with running_platform(ldv_env) as platform:
        utrecht = agencies("gemeente-utrecht")  # on the bus, and signing over HTTP as well
        case_id = active_case(platform.base_url, utrecht)
        traceparent, trace_id, span_id = new_traceparent()

        def share() -> Any:
            command = share_request_command(case_id)  # a new request each time
            command.pop("agency")
            try:
                with AgencyClient(utrecht) as client:
                    result = client.request("data_sharing", "request_share", command, traceparent=traceparent)
            except CommandFailed:
                return None  # data_sharing does not know the case yet
            return result if result["decisions"][0]["outcome"] == "shared" else None

        eventually(share, timeout=30, interval=0.5)
        [decided] = eventually(
            lambda: [r for r in records_of(platform, path, trace_id) if r["name"] == "share allowed"],
            timeout=20,
        )
    check_record(decided, processing_log(platform.settings).register)
    assert decided["parent_span_id"] == span_id
