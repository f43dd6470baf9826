"""On this machine's real RabbitMQ and PostgreSQL: a mother logged in with her own BSN sees the
children she represents in a case and asks a question for her daughter, named by the case's
reference only; the record holder hears it "submitted by the legal representative", answers on
the bus, and the mother reads the answer; the father (not the representative on record) gets the
404 of an unknown case. And an objection to one agency's part takes effect at once: shares to
that agency are refused ``objection_to_agency`` while the others go on, the whole table hears
it, and after the citizen withdraws it the shares are weighed as before."""

from __future__ import annotations

import uuid

import pytest
import requests

from keten.demo import CITIZEN, register_case_command
from keten_client import AgencyClient, CommandFailed, InboxMessage
from tests.factories import (
    DAUGHTER,
    FATHER,
    MOTHER,
    SON,
    activate_command,
    family_case_command,
    share_command,
)
from tests.integration.test_agency_bus import (  # noqa: F401 (a fixture)
    KREDIETBANK,
    UTRECHT,
    agencies,
)
from tests.support import eventually, pg_dump, running_platform

pytestmark = pytest.mark.integration

MITROS = "woningcorporatie-mitros"
QUESTION = "Waarom praat de school over mijn dochter?"
ANSWER = {
    "nl": "De school doet mee omdat uw dochter daar elke dag is.",
    "en": "The school takes part because your daughter is there every day.",
}


def log_in(base: str, bsn: str) -> dict[str, str]:
    token = requests.post(f"{base}/api/citizen/session", json={"bsn": bsn}, timeout=5)
    return {"Authorization": f"Bearer {token.json()['token']}"}


class Inboxes:
    """What each agency heard, gathered across reads (reading takes the messages out)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[InboxMessage]] = {}

    def heard(self, credentials, name: str) -> list[InboxMessage]:
        with AgencyClient(credentials) as client:
            for message in client.inbox(timeout=1):
                self.seen.setdefault(f"{credentials.agency}/{message.name}", []).append(message)
        return self.seen.get(f"{credentials.agency}/{name}", [])


def test_a_mother_acts_for_her_daughter_by_the_cases_reference_and_the_father_cannot(
    production_env,
    postgres_dsn,
    pg_schema,
    agencies,  # noqa: F811
):
    with running_platform(production_env) as platform:
        base = platform.base_url
        utrecht = agencies(UTRECHT)
        case = family_case_command()
        with AgencyClient(utrecht) as client:
            client.request("case_registration", "register_case", case, timeout=60)
            client.request(
                "case_registration", "activate_case", activate_command(case["case_id"]), timeout=60
            )
        mother, father = log_in(base, MOTHER["bsn"]), log_in(base, FATHER["bsn"])

        def children() -> list[dict] | None:
            found = requests.get(f"{base}/api/citizen/represented", headers=mother, timeout=30)
            assert found.status_code == 200, found.text
            entries = found.json()["represented"]
            return entries if len(entries) == 2 and all(e["case"] for e in entries) else None

        represented = eventually(children, timeout=60, interval=0.3)
        assert {(e["case_id"], e["name"], e["role"]) for e in represented} == {
            (case["case_id"], DAUGHTER["name"], "child"),
            (case["case_id"], SON["name"], "child"),
        }
        [daughter] = [e for e in represented if e["name"] == DAUGHTER["name"]]
        answer_text = requests.get(f"{base}/api/citizen/represented", headers=mother, timeout=30).text
        for person in (DAUGHTER, SON):
            assert person["bsn"] not in answer_text
        assert requests.get(f"{base}/api/citizen/represented", headers=father, timeout=30).json() == {
            "represented": []
        }

        question = {
            "request_id": str(uuid.uuid4()),
            "case_id": case["case_id"],
            "kind": "question",
            "text": QUESTION,
            "for_subject": daughter["subject_ref"],
        }
        refused = requests.post(f"{base}/api/citizen/requests", json=question, headers=father, timeout=30)
        unknown = {**question, "case_id": str(uuid.uuid4())}
        unknown_case = requests.post(f"{base}/api/citizen/requests", json=unknown, headers=father, timeout=30)
        assert (refused.status_code, refused.json()) == (unknown_case.status_code, unknown_case.json())
        assert refused.status_code == 404

        asked = requests.post(f"{base}/api/citizen/requests", json=question, headers=mother, timeout=30)
        assert asked.status_code == 201, asked.text
        assert asked.json()["submitted_by"] == "legal_representative"
        request_id = asked.json()["request_id"]

        inboxes = Inboxes()
        [received] = eventually(lambda: inboxes.heard(utrecht, "CitizenRequestReceived"), timeout=60)
        assert received.data["request_id"] == request_id and received.data["answer_required"] is True
        assert received.data["submitted_by"] == "legal_representative"
        assert received.content == {"text": QUESTION, "subject": {"role": "child"}}
        with AgencyClient(utrecht) as client:
            client.request(
                "consent",
                "answer_citizen_request",
                {"request_id": request_id, "outcome": "granted", "reason": ANSWER},
                timeout=60,
            )

        [again] = [
            e
            for e in requests.get(f"{base}/api/citizen/represented", headers=mother, timeout=30).json()[
                "represented"
            ]
            if e["subject_ref"] == daughter["subject_ref"]
        ]
        [shown] = again["requests"]
        assert shown["text"] == QUESTION and shown["submitted_by"] == "legal_representative"
        [answered] = [s for s in shown["steps"] if s["step"] == "answered"]
        assert (answered["outcome"], answered["reason"]) == ("granted", ANSWER)
        own = requests.get(f"{base}/api/citizen/requests", headers=mother, timeout=30).json()
        assert own == {"requests": []}, "the mother's own requests are hers only"

    dump = pg_dump(postgres_dsn, pg_schema)
    for value in (QUESTION, ANSWER["nl"], DAUGHTER["bsn"], MOTHER["bsn"]):
        assert value not in dump


def test_an_objection_to_one_agencys_part_stops_its_shares_the_table_hears_it_and_withdrawing_resumes(
    production_env,
    agencies,  # noqa: F811
):
    with running_platform(production_env) as platform:
        base = platform.base_url
        utrecht, kredietbank, mitros = agencies(UTRECHT), agencies(KREDIETBANK), agencies(MITROS)
        case = register_case_command(str(uuid.uuid4()))
        with AgencyClient(utrecht) as client:
            client.request("case_registration", "register_case", case, timeout=60)
            client.request(
                "case_registration", "activate_case", activate_command(case["case_id"]), timeout=60
            )
        citizen = log_in(base, CITIZEN["bsn"])

        def decide(to: str, categories: list[str]) -> dict:
            command = share_command(case["case_id"], to_agencies=[to], categories=categories)
            command.pop("agency")
            with AgencyClient(utrecht) as client:
                [decision] = client.request("data_sharing", "request_share", command, timeout=60)["decisions"]
            return decision

        # A probe the agreement refuses anyway (Gemeente Utrecht brings no allowances): before
        # the objection its reason is the agreement's, during it the objection's.
        def probe() -> str | None:
            try:
                return str(decide(MITROS, ["allowances"])["reason_code"])
            except CommandFailed as failure:  # data_sharing has not heard of the case yet
                if failure.error["code"] in ("unknown_case", "case_not_active"):
                    return None
                raise

        assert eventually(lambda: probe() == "category_not_brought", timeout=60, interval=0.3)

        objection = {"request_id": str(uuid.uuid4()), "case_id": case["case_id"], "kind": "objection"}
        objection["agency"] = MITROS
        lodged = requests.post(f"{base}/api/citizen/requests", json=objection, headers=citizen, timeout=30)
        assert (lodged.status_code, lodged.json()["status"]) == (201, "open"), lodged.text
        request_id = lodged.json()["request_id"]

        assert eventually(lambda: probe() == "objection_to_agency", timeout=60, interval=0.3)
        refused = decide(MITROS, ["payment_arrears_signal"])
        assert (refused["outcome"], refused["reason_code"]) == ("refused", "objection_to_agency")
        assert decide(KREDIETBANK, ["debts"])["outcome"] == "shared", "the other agencies go on"

        inboxes = Inboxes()
        for credentials, must_answer in ((mitros, True), (utrecht, False), (kredietbank, False)):
            [notice] = eventually(
                lambda credentials=credentials: [
                    m
                    for m in inboxes.heard(credentials, "CitizenRequestReceived")
                    if m.data["request_id"] == request_id
                ],
                timeout=60,
            )
            assert notice.data["answer_required"] is must_answer
            assert notice.data["objection_to_agency"] is True and notice.data["agency"] == MITROS

        [mine] = requests.get(f"{base}/api/citizen/requests", headers=citizen, timeout=30).json()["requests"]
        assert mine["objection_in_force"] is True

        withdrawn = requests.post(
            f"{base}/api/citizen/requests/{request_id}/withdraw", headers=citizen, timeout=30
        )
        assert withdrawn.json()["status"] == "withdrawn", withdrawn.text
        assert eventually(lambda: probe() == "category_not_brought", timeout=60, interval=0.3)
        [mine] = requests.get(f"{base}/api/citizen/requests", headers=citizen, timeout=30).json()["requests"]
        assert mine["objection_in_force"] is False
