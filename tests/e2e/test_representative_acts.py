"""A minor's legal representative acts for the minor on the page, on the embedded platform in a
real headless Chromium: the mother logs in with her own BSN, sees each child she represents in
the case by name, asks a question for her daughter and objects to the school's part for her; the
page says she did it as the legal representative, the objection is in force and can be
withdrawn, the record holder's answer shows; the father, not the representative on record, sees
no child and is refused as for an unknown case. The page passes axe at phone and desktop widths."""

from __future__ import annotations

import uuid

import pytest
import requests

from keten.demo import Client
from tests.e2e.test_citizen_acts import axe_violations
from tests.e2e.test_citizen_page import browser  # noqa: F401  (a fixture)
from tests.factories import DAUGHTER, FATHER, MOTHER, SON, family_case_command
from tests.support import eventually, keten, running_platform

pytestmark = pytest.mark.e2e

QUESTION = "Wat vertelt de school over Noor aan de tafel?"
ANSWER = {
    "nl": "De school vertelt alleen hoe het met Noor op school gaat.",
    "en": "Only how Noor does at school.",
}
SCHOOL = "school-het-baken"


@pytest.fixture
def platform(embedded_env):
    with running_platform(embedded_env) as running:
        yield running


def test_the_mother_acts_for_her_daughter_on_her_page_and_the_father_cannot(platform, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    client = Client(platform.base_url, platform.credentials())
    client.wait_healthy()
    case = family_case_command()
    client.call("POST", "/api/cases", json=case)
    client.retry_until(
        "the case is active",
        lambda: client.call("POST", f"/api/cases/{case['case_id']}/activate", json={"schema_version": 1}),
    )

    browser.get(f"{platform.base_url}/inzage")
    browser.find_element(By.ID, "bsn").send_keys(MOTHER["bsn"], Keys.ENTER)

    def daughters_section():
        browser.refresh()
        found = [
            s
            for s in browser.find_elements(By.CSS_SELECTOR, "section.case")
            if DAUGHTER["name"] in s.find_element(By.TAG_NAME, "h2").text
        ]
        return found[0] if found and SON["name"] in browser.page_source else None

    section = eventually(daughters_section, timeout=30, interval=0.5)
    assert "wettelijk vertegenwoordiger" in browser.page_source
    for person in (DAUGHTER, SON):
        assert person["bsn"] not in browser.page_source

    # A question for her daughter, by the daughter's form (no JavaScript).
    section.find_element(By.CSS_SELECTOR, "input[value=question]").click()
    section.find_element(By.CSS_SELECTOR, "textarea[name=text]").send_keys(QUESTION)
    section.find_element(By.CSS_SELECTOR, "form.act button[type=submit]").click()
    eventually(lambda: QUESTION in browser.page_source, timeout=10)
    section = daughters_section()
    assert QUESTION in section.text and "Ingediend door u als wettelijk vertegenwoordiger" in section.text

    # An objection to the school's part only, for her daughter.
    section.find_element(By.CSS_SELECTOR, "input[value=objection]").click()
    Select(section.find_element(By.CSS_SELECTOR, "select[name=agency]")).select_by_value(SCHOOL)
    section.find_element(By.CSS_SELECTOR, "form.act button[type=submit]").click()
    eventually(lambda: "Dit bezwaar geldt nu" in browser.page_source, timeout=10)
    assert "gestopt op uw bezwaar" not in browser.page_source, "the case goes on"
    assert axe_violations(browser) == []  # a phone's width
    browser.set_window_size(1280, 1000)
    assert axe_violations(browser) == []  # a desktop's width

    # She takes the objection back: the school takes part again.
    section = daughters_section()
    withdraw = [
        b for b in section.find_elements(By.CSS_SELECTOR, ".request button") if b.text == "Bezwaar intrekken"
    ]
    withdraw[0].click()
    eventually(lambda: "geldt niet meer" in browser.page_source, timeout=10)

    # The record holder answers the question, with the documented command.
    utrecht = platform.credentials()
    due = client.call("GET", "/api/citizen-requests")["requests"]
    [question] = [r for r in due if r["kind"] == "question"]
    assert question["submitted_by"] == "legal_representative" and utrecht.agency == "gemeente-utrecht"
    answered = keten(
        "requests",
        "answer",
        question["request_id"],
        "--url",
        platform.base_url,
        "--outcome",
        "granted",
        "--reason-nl",
        ANSWER["nl"],
        "--reason-en",
        ANSWER["en"],
        env=platform.env,
    )
    assert answered.returncode == 0, answered.stderr
    section = daughters_section()
    assert ANSWER["nl"] in section.text

    # The father is not the representative on record: no child on his page, and the daughter's
    # reference is the 404 of an unknown case for him.
    browser.find_element(By.CSS_SELECTOR, "form[action^='/inzage/logout'] button").click()
    browser.get(f"{platform.base_url}/inzage")
    browser.find_element(By.ID, "bsn").send_keys(FATHER["bsn"], Keys.ENTER)
    eventually(lambda: browser.find_elements(By.CSS_SELECTOR, "form.act"), timeout=15)
    assert (
        DAUGHTER["name"] not in browser.page_source
        and "wettelijk vertegenwoordiger" not in browser.page_source
    )
    session = requests.post(
        f"{platform.base_url}/api/citizen/session", json={"bsn": MOTHER["bsn"]}, timeout=5
    )
    mother = {"Authorization": f"Bearer {session.json()['token']}"}
    represented = requests.get(f"{platform.base_url}/api/citizen/represented", headers=mother, timeout=10)
    [ref] = [e["subject_ref"] for e in represented.json()["represented"] if e["name"] == DAUGHTER["name"]]
    session = requests.post(
        f"{platform.base_url}/api/citizen/session", json={"bsn": FATHER["bsn"]}, timeout=5
    )
    father = {"Authorization": f"Bearer {session.json()['token']}"}
    attempt = {
        "request_id": str(uuid.uuid4()),
        "case_id": case["case_id"],
        "kind": "objection",
        "for_subject": ref,
    }
    refused = requests.post(
        f"{platform.base_url}/api/citizen/requests", json=attempt, headers=father, timeout=10
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "unknown_case")
