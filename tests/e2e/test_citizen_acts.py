"""The citizen acts, on the embedded platform in a real headless Chromium: they object on their
page, the case stops for them, every agency at the table hears it in its inbox and the page
shows it; a question answered in time shows as answered, one left past its deadline (the clock
moved with ``keten requests escalate --as-of``) as overdue with the complaint route; an agency's
extension without a reason is refused. The page passes axe at phone and desktop widths."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import pytest
import requests
from kombu import Connection

from keten.demo import CITIZEN, Client, register_case_command
from shared.topology import inbox_queue
from tests.e2e.test_citizen_page import browser  # noqa: F401  (a fixture)
from tests.support import eventually, keten, running_platform, signed_request

pytestmark = pytest.mark.e2e

AGENCIES = ("gemeente-utrecht", "kredietbank-utrecht", "woningcorporatie-mitros")
REASON = {
    "nl": "Wij hebben uw dossier nagelezen; hier is ons antwoord.",
    "en": "We read your file; here is our answer.",
}


@pytest.fixture
def platform(embedded_env):
    with running_platform(embedded_env) as running:
        yield running


def inbox(platform, agency: str) -> list[dict]:
    """What is waiting in the agency's inbox on the in-process broker (taken out). The embedded
    platform declares no inboxes (no agency connects to it): the first call declares it."""
    found = []
    with Connection(platform.settings.amqp_uri) as connection:
        queue = inbox_queue(agency)(connection.channel())
        queue.declare()
        while (message := queue.get(no_ack=True)) is not None:
            found.append(json.loads(message.body))
    return found


def axe_violations(browser) -> list:  # noqa: F811
    from axe_selenium_python import Axe

    Axe(browser).inject()
    browser.set_script_timeout(60)
    report = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
        ".then(done).catch(error => done({error: String(error)}));"
    )
    assert "error" not in report, report
    return report["violations"]


def test_the_citizen_objects_asks_and_sees_answers_and_deadlines_on_their_page(platform, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    client = Client(platform.base_url, platform.credentials())
    client.wait_healthy()
    case = register_case_command(str(uuid.uuid4()))
    client.call("POST", "/api/cases", json=case)
    client.retry_until(
        "the case is active",
        lambda: client.call("POST", f"/api/cases/{case['case_id']}/activate", json={"schema_version": 1}),
    )
    for agency in AGENCIES:
        inbox(platform, agency)  # start from empty inboxes

    browser.get(f"{platform.base_url}/inzage")
    browser.find_element(By.ID, "bsn").send_keys(CITIZEN["bsn"], Keys.ENTER)
    eventually(lambda: browser.find_elements(By.CSS_SELECTOR, "form.act"), timeout=15)
    contact = browser.find_element(By.CSS_SELECTOR, ".contact").text
    assert "030 000 01 01" in contact and "zorgenveiligheid@gemeente-utrecht.example" in contact
    assert "De Nationale ombudsman" in browser.page_source

    # Two questions, by the form, without JavaScript's help: one to be answered, one left.
    def ask(words: str) -> None:
        browser.find_element(By.CSS_SELECTOR, "input[value=question]").click()
        browser.find_element(By.CSS_SELECTOR, "textarea[name=text]").send_keys(words)
        browser.find_element(By.CSS_SELECTOR, "form.act button[type=submit]").click()
        eventually(lambda: words in browser.page_source, timeout=10)

    ask("Waarom kreeg de woningcorporatie mijn schulden te zien?")
    ask("Wie aan tafel weet van mijn inkomen?")
    assert axe_violations(browser) == []  # a phone's width
    browser.set_window_size(1280, 1000)
    assert axe_violations(browser) == []  # a desktop's width

    # The agency reads what it must answer, its deadlines, and answers the first question.
    utrecht = platform.credentials()
    due = signed_request("GET", platform.base_url, "/api/citizen-requests", None, utrecht).json()["requests"]
    assert len(due) == 2 and all(r["kind"] == "question" for r in due)
    first, second = sorted(due, key=lambda r: r["received_at"])
    path = f"/api/citizen-requests/{first['request_id']}"
    without_reason = signed_request(
        "POST", platform.base_url, f"{path}/extend", {"schema_version": 1, "until": first["due_on"]}, utrecht
    )
    assert (without_reason.status_code, without_reason.json()["error"]["code"]) == (
        400,
        "extension_reason_required",
    )
    # As an agency tries it out: the documented command, signed with var/agencies/ keys.
    answered = keten(
        "requests",
        "answer",
        first["request_id"],
        "--url",
        platform.base_url,
        "--outcome",
        "granted",
        "--reason-nl",
        REASON["nl"],
        "--reason-en",
        REASON["en"],
        env=platform.env,
    )
    assert answered.returncode == 0 and "answered" in answered.stdout, answered.stderr

    # The clock moves past the second's deadline, through the public command.
    past = (date.fromisoformat(second["due_on"]) + timedelta(days=1)).isoformat()
    escalated = keten("requests", "escalate", "--as-of", past, env=platform.env)
    assert escalated.returncode == 0, escalated.stderr
    assert "1 request(s) became overdue" in escalated.stdout

    browser.refresh()
    blocks = {b.get_attribute("class") for b in browser.find_elements(By.CSS_SELECTOR, ".request")}
    assert blocks == {"request request-answered", "request request-overdue"}
    overdue = browser.find_element(By.CSS_SELECTOR, ".request-overdue").text
    assert "te laat" in overdue and second["due_on"] in overdue
    assert "Nationale ombudsman" in overdue and "Autoriteit Persoonsgegevens" in overdue
    assert REASON["nl"] in browser.find_element(By.CSS_SELECTOR, ".request-answered").text
    taken: list[dict] = []

    def told(stage: str) -> bool:
        taken.extend(inbox(platform, "gemeente-utrecht"))
        return any(m["message"] == "CitizenRequestDue" and m["data"]["stage"] == stage for m in taken)

    eventually(lambda: told("overdue"), timeout=15, interval=0.2)  # the agency is told too
    received = [m["data"] for m in taken if m["message"] == "CitizenRequestReceived"]
    assert sorted(r["request_id"] for r in received) == sorted([first["request_id"], second["request_id"]])
    assert all(r["answer_required"] for r in received)

    # The objection: "stop discussing my case", on the page.
    browser.find_element(By.CSS_SELECTOR, "input[value=objection]").click()
    Select(browser.find_element(By.CSS_SELECTOR, "select[name=agency]")).select_by_value("")
    browser.find_element(By.CSS_SELECTOR, "form.act button[type=submit]").click()

    def stopped() -> bool:
        browser.refresh()
        return "gestopt op uw bezwaar" in browser.page_source

    eventually(stopped, timeout=20, interval=0.5)
    assert "Uw bezwaar geldt vanaf nu" in browser.page_source
    for agency in AGENCIES:
        heard = eventually(
            lambda agency=agency: [
                m for m in inbox(platform, agency) if m["message"] == "CitizenRequestReceived"
            ],
            timeout=10,
        )
        assert [m["data"]["kind"] for m in heard] == ["objection"], agency

    # Nobody shares about them any more: the table's agencies are refused.
    share = {
        "schema_version": 1,
        "request_id": str(uuid.uuid4()),
        "case_id": case["case_id"],
        "subject_bsn": CITIZEN["bsn"],
        "to_agencies": ["kredietbank-utrecht"],
        "categories": ["debts"],
        "purpose": "debt_assistance",
        "form": "oral",
    }
    decision = eventually(
        lambda: signed_request("POST", platform.base_url, "/api/shares", share, utrecht).json(), timeout=10
    )
    assert decision["decisions"][0]["reason_code"] in ("objection_lodged", "case_stopped"), decision
    assert requests.get(f"{platform.base_url}/api/citizen/requests", timeout=5).status_code == 403
