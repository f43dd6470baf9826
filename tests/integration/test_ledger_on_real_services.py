"""The accountability ledger on RabbitMQ and PostgreSQL: a case with written, oral and refused
shares, read by the sender over HTTP, by the recipients over the bus and with `keten ledger`;
the two sides of each share agree field for field, and nobody reads another agency's side."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from keten.demo import CITIZEN, register_case_command
from keten_client import AgencyClient, CommandFailed
from shared.agencies import register_new_credentials, write_private
from tests.factories import activate_command, share_command
from tests.support import eventually, running_platform, signed_request

pytestmark = pytest.mark.integration

UTRECHT, KREDIETBANK, MITROS = "gemeente-utrecht", "kredietbank-utrecht", "woningcorporatie-mitros"


def without_side(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "side"}


def request_once_the_case_is_known(client: AgencyClient, body: dict[str, Any]) -> Any:
    def attempt() -> Any:
        try:
            return client.request("data_sharing", "request_share", body)
        except CommandFailed as failure:
            if failure.error["code"] in ("unknown_case", "case_not_active"):
                return None
            raise

    return eventually(attempt, timeout=20, interval=0.1)


def test_sender_and_recipients_read_the_same_ledger_of_written_oral_and_refused_shares(
    production_env, tmp_path
):
    with running_platform(production_env) as platform:
        settings = platform.settings
        base_url = f"http://{settings.gateway_address}"
        utrecht, kredietbank, mitros = (
            register_new_credentials(settings, agency, amqp_url=production_env["AMQP_URI"])
            for agency in (UTRECHT, KREDIETBANK, MITROS)
        )
        with AgencyClient(utrecht) as client:
            case = register_case_command(str(uuid.uuid4()))
            case_id = case["case_id"]
            client.request("case_registration", "register_case", case)
            client.request("case_registration", "activate_case", activate_command(case_id))
            written = request_once_the_case_is_known(client, share_command(case_id))
            oral = client.request(
                "data_sharing",
                "request_share",
                share_command(case_id, form="oral", meeting_id="overleg-7-december", content=None),
            )
            refused = client.request(
                "data_sharing",
                "request_share",
                share_command(case_id, to_agencies=[MITROS], categories=["income"]),
            )
        shared_ids = [answer["decisions"][0]["share_id"] for answer in (written, oral)]
        [refusal] = refused["decisions"]
        assert refusal["outcome"] == "refused"

        def kredietbank_ledger() -> list[dict[str, Any]]:
            with AgencyClient(kredietbank) as client:
                entries = client.request("data_sharing", "get_ledger", {"case_id": case_id})["entries"]
            return entries if all(entry["received_at"] for entry in entries) and len(entries) == 2 else []

        received = eventually(kredietbank_ledger, timeout=20, interval=0.2)
        path = f"/api/agencies/{UTRECHT}/ledger?case_id={case_id}"
        answer = signed_request("GET", base_url, path, None, utrecht)
        assert answer.status_code == 200, answer.text
        provided = answer.json()["entries"]

        # The sender sees all three, the recipient its two: the same rows, field for field.
        assert [entry["side"] for entry in provided] == ["provided"] * 3
        assert [entry["side"] for entry in received] == ["received"] * 2
        by_id = {entry["share_id"]: entry for entry in provided}
        assert [without_side(by_id[e["share_id"]]) for e in received] == [without_side(e) for e in received]
        assert [e["share_id"] for e in received] == shared_ids
        first, second = received
        assert (first["form"], first["meeting_id"], first["outcome"]) == ("written", None, "shared")
        assert (second["form"], second["meeting_id"]) == ("oral", "overleg-7-december")
        assert first["sender_provision"] and first["recipient_provision"]
        assert first["received_at"] >= first["decided_at"]
        subject = first["subject"]
        assert len(subject) == 32 and CITIZEN["bsn"] not in json.dumps(provided)

        # The refused recipient, by `keten ledger` as its FG would export it for the supervisor.
        credentials = tmp_path / "mitros.json"
        write_private(credentials, {**vars(mitros), "inbox_queue": f"keten.inbox.{MITROS}"})
        export = subprocess.run(
            [
                sys.executable,
                "-m",
                "keten.cli",
                "ledger",
                "--credentials",
                str(credentials),
                "--format",
                "csv",
            ],
            env=production_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert export.returncode == 0, export.stderr[-2000:]
        [row] = list(csv.DictReader(io.StringIO(export.stdout)))
        assert (row["side"], row["share_id"], row["outcome"], row["reason_code"]) == (
            "received",
            refusal["share_id"],
            "refused",
            "category_not_agreed",
        )
        assert row["received_at"] == ""
        assert row["decided_at"] == by_id[refusal["share_id"]]["decided_at"]

        # Nobody reads another agency's side: over HTTP, nor over the bus.
        other = signed_request("GET", base_url, f"/api/agencies/{UTRECHT}/ledger", None, kredietbank)
        assert (other.status_code, other.json()["error"]["code"]) == (403, "not_your_ledger")
        with AgencyClient(kredietbank) as client, pytest.raises(CommandFailed) as refused_ledger:
            client.request("data_sharing", "get_ledger", {"of_agency": UTRECHT})
        assert refused_ledger.value.error["code"] == "not_your_ledger"
