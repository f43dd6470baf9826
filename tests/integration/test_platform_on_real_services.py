"""The production architecture on this machine's real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import pytest
import requests

from keten.demo import CITIZEN, SHARED_SENTENCE, run_demo
from shared.pseudonym import pseudonymise
from tests.support import eventually, pg_dump, running_platform, signed_request

pytestmark = pytest.mark.integration

CONSUMERS = ("consent", "data_sharing", "notification", "retention")


def test_a_share_travels_through_every_service_on_rabbitmq_and_postgresql(
    production_env, rabbit, postgres_dsn, pg_schema
):
    with running_platform(production_env) as platform:
        result = run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())

        [case] = [c for c in result.overview["cases"] if c["case_id"] == result.case_id]
        [share] = case["shares"]
        assert share["content"]["content"] == SHARED_SENTENCE
        # The citizen chose e-mail; no mail server is configured here, so a letter goes.
        assert share["notification"]["channel"] == "letter"
        subject = pseudonymise(CITIZEN["bsn"], platform.settings.pseudonym_secret)

        def told() -> bool:
            [case] = [
                c
                for c in platform.app("notification").overview_for(subject).to_json()["cases"]
                if c["case_id"] == result.case_id
            ]
            return bool(case["shares"][0]["notification"]["status"] == "sent")

        eventually(told, timeout=20)

        def retention_knows_the_share() -> list:
            path = f"/api/cases/{result.case_id}/retention"
            records = signed_request("GET", platform.base_url, path, None, platform.credentials()).json()
            return [r for r in records["records"] if r["record_kind"] == "share_records" and r["due_at"]]

        [share_record] = eventually(retention_knows_the_share)
        assert share_record["record_id"] == result.share_id

        health = requests.get(f"{platform.base_url}/health", timeout=10)
        assert health.status_code == 200
        assert all(report["ok"] for report in health.json()["services"].values())

    for service in CONSUMERS:
        queue = rabbit.queue(f"keten.{service}.events")
        assert queue["type"] == "quorum"
        assert queue["arguments"]["x-single-active-consumer"] is True
        assert queue["arguments"]["x-dead-letter-exchange"] == "keten.dead-letter"

    dump = pg_dump(postgres_dsn, pg_schema)
    assert "case_registration_events" in dump and "notification_overview_entries" in dump
    for value in (CITIZEN["bsn"], CITIZEN["name"], CITIZEN["email"], SHARED_SENTENCE, "huurachterstand"):
        assert value not in dump, "personal data must be stored only encrypted"
