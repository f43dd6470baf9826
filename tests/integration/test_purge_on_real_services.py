"""Retention on this machine's real RabbitMQ and PostgreSQL: after a purge nothing of the case's
personal data can be read anywhere, other cases are untouched, and everything still replays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
import requests

from keten.demo import CITIZEN, SHARED_SENTENCE, register_case_command, run_demo
from keten.purge import run_purge
from keten_client import Credentials
from shared.sealed import PURGED
from tests.factories import activate_command, received, share_command
from tests.support import eventually, pg_dump, running_platform, signed_request

pytestmark = pytest.mark.integration

THREE_YEARS_ON = datetime.now(UTC) + timedelta(days=3 * 366)
NEIGHBOUR = {
    "bsn": "999990020",
    "name": "Jan Bakker",
    "email": "jan.bakker@example.org",
    "sentence": "Meneer wacht al vier maanden op zijn toeslag.",
}


def session(base_url: str, bsn: str) -> dict[str, str]:
    token = requests.post(f"{base_url}/api/citizen/session", json={"bsn": bsn}, timeout=5).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def overview_case(base_url: str, bsn: str, case_id: str) -> dict:
    overview = requests.get(f"{base_url}/api/citizen/overview", headers=session(base_url, bsn), timeout=5)
    [case] = [c for c in overview.json()["cases"] if c["case_id"] == case_id]
    return case


def register_neighbours_case(base_url: str, utrecht: Credentials) -> str:
    """Another citizen's case, still running, with a share of its own."""
    case_id = str(uuid.uuid4())
    command = register_case_command(case_id)
    command["subjects"][0].update(bsn=NEIGHBOUR["bsn"], name=NEIGHBOUR["name"], email=NEIGHBOUR["email"])
    assert signed_request("POST", base_url, "/api/cases", command, utrecht).status_code == 201
    activate = activate_command(case_id)
    assert (
        signed_request("POST", base_url, f"/api/cases/{case_id}/activate", activate, utrecht).status_code
        == 200
    )
    share = share_command(case_id, subject_bsn=NEIGHBOUR["bsn"], content=NEIGHBOUR["sentence"])

    def shared() -> bool:
        response = signed_request("POST", base_url, "/api/shares", share, utrecht)
        return response.status_code == 200 and response.json()["decisions"][0]["outcome"] == "shared"

    eventually(shared)
    return case_id


def live_keys(dsn: str, schema: str, case_id: str) -> int:
    with psycopg2.connect(dsn, options=f"-c search_path={schema}") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM keten_keys WHERE case_id = %s AND wrapped_key IS NOT NULL", (case_id,)
        )
        return int(cur.fetchone()[0])


def test_after_a_purge_the_whole_database_holds_nothing_readable_of_the_case(
    production_env, postgres_dsn, pg_schema
):
    with running_platform(production_env) as platform:
        result = run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())
        other = register_neighbours_case(platform.base_url, platform.credentials())
        eventually(lambda: overview_case(platform.base_url, NEIGHBOUR["bsn"], other)["shares"])
        assert live_keys(postgres_dsn, pg_schema, result.case_id) == 2

        assert run_purge(False, THREE_YEARS_ON, progress=False, settings=platform.settings) == 0

        case = eventually(
            lambda: (
                (c := overview_case(platform.base_url, CITIZEN["bsn"], result.case_id))["purged"]
                and len(c["purged"]) == 2
                and c
            )
        )
        [share] = case["shares"]
        assert share["to_agency"] == "kredietbank-utrecht" and share["sender_ground"] == "statutory_task"
        assert share["content"] is None and share["purged_at"]
        for service in ("consent", "data_sharing", "notification", "retention"):
            eventually(lambda s=service: platform.app(s).cases.get(uuid.UUID(result.case_id)) is None)

        # The keys are gone, and every stored copy reads as purged; the events still replay.
        assert live_keys(postgres_dsn, pg_schema, result.case_id) == 0
        registration = platform.app("case_registration")
        purged_case = registration.repository.get(uuid.UUID(result.case_id))
        assert purged_case.outcome == "help_arranged"
        assert registration.vault.open(purged_case.subjects[0].details) is PURGED
        sharing = platform.app("data_sharing")
        assert sharing.vault.open(sharing.repository.get(uuid.UUID(result.share_id)).content) is PURGED

        # The other case is untouched.
        assert live_keys(postgres_dsn, pg_schema, other) == 2
        neighbour = overview_case(platform.base_url, NEIGHBOUR["bsn"], other)
        assert (
            neighbour["purged"] == []
            and neighbour["shares"][0]["content"]["content"] == NEIGHBOUR["sentence"]
        )

        # The retention schedule is rebuilt from the events alone, to the same schedule.
        retention = platform.app("retention")
        before = retention.schedule_for(uuid.UUID(result.case_id))
        retention.rebuild_schedule([*received(registration), *received(sharing)])
        assert retention.schedule_for(uuid.UUID(result.case_id)) == before
        assert {r.status for r in before} == {"purged", "kept"}

    dump = pg_dump(postgres_dsn, pg_schema)
    assert "keten_keys" in dump and "retention_records" in dump and "notification_overview_entries" in dump
    for value in (CITIZEN["bsn"], CITIZEN["name"], CITIZEN["email"], SHARED_SENTENCE):
        assert value not in dump
    for value in (NEIGHBOUR["bsn"], NEIGHBOUR["name"], NEIGHBOUR["sentence"]):
        assert value not in dump, "the other case's data is there, but only sealed"


def test_a_legal_hold_and_an_erasure_request_through_the_gateway(production_env):
    with running_platform(production_env) as platform:
        base = platform.base_url
        result = run_demo(base, out=lambda *_: None, credentials=platform.credentials())
        citizen = session(base, CITIZEN["bsn"])
        holds = f"/api/cases/{result.case_id}/legal-holds"
        hold = {"schema_version": 1, "agency": "veilig-thuis-utrecht", "reason_code": "complaint"}
        refused = signed_request("POST", base, holds, hold, platform.credentials("veilig-thuis-utrecht"))
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "not_a_participant")

        hold.update(agency="kredietbank-utrecht", reference="NO-2026-117")
        placed = signed_request("POST", base, holds, hold, platform.credentials("kredietbank-utrecht"))
        assert placed.status_code == 201, placed.text
        hold_id = placed.json()["hold_id"]

        erasure = requests.post(
            f"{base}/api/citizen/erasure?lang=en",
            json={"case_id": result.case_id},
            headers=citizen,
            timeout=5,
        ).json()
        assert (erasure["decision"], erasure["reason_code"]) == ("refused", "legal_hold")
        assert "still ongoing" in erasure["reason"]
        assert run_purge(False, THREE_YEARS_ON, progress=False, settings=platform.settings) == 0
        retention = f"/api/cases/{result.case_id}/retention"
        schedule = signed_request("GET", base, retention, None, platform.credentials()).json()["records"]
        assert {r["record_kind"]: r["status"] for r in schedule}["case_records"] == "on_hold"

        lift = {"schema_version": 1, "agency": "gemeente-utrecht"}
        lifted = signed_request("POST", base, f"{holds}/{hold_id}/lift", lift, platform.credentials())
        assert lifted.json()["status"] == "lifted"
        erasure = requests.post(
            f"{base}/api/citizen/erasure", json={"case_id": result.case_id}, headers=citizen, timeout=5
        ).json()
        assert erasure["decision"] == "granted"

        case = eventually(
            lambda: (
                (c := overview_case(base, CITIZEN["bsn"], result.case_id))["erasure_requests"]
                and len(c["purged"]) == 2
                and c
            )
        )
        assert [r["decision"] for r in case["erasure_requests"]] == ["refused", "granted"]
        assert {p["reason"] for p in case["purged"]} == {"erasure"}
        unauthenticated = requests.post(
            f"{base}/api/citizen/erasure", json={"case_id": result.case_id}, timeout=5
        )
        assert unauthenticated.status_code == 403
