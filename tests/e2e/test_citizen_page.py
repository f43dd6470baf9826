"""The citizen's side of the demo on the embedded platform: the e-mail a local SMTP server
receives, the letter, the page in a real headless Chromium (seen, used by keyboard, checked for
accessibility with axe-core), the downloadable copy, and that no citizen sees another's."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
import requests

from keten.demo import CITIZEN, Client, register_case_command, run_demo
from shared.pseudonym import pseudonymise
from tests.factories import received
from tests.support import eventually, notifying_env, running_platform, signed_request
from tests.unit.test_notification import override_event

pytestmark = pytest.mark.e2e

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
NEIGHBOUR_BSN = "111222333"
SCREENSHOTS = Path("var/screenshots")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("chromium and chromium-driver are needed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=412,915"):
        options.add_argument(argument)  # a phone's width
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def platform(embedded_env, mailbox, tmp_path):
    env = notifying_env(embedded_env, mailbox, tmp_path / "letters")
    with running_platform(env) as running:
        yield running


def test_the_demo_share_reaches_the_citizen_by_mail_and_on_a_page_they_can_use(platform, mailbox, browser):
    result = run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())

    # The e-mail, received by a real SMTP server, once.
    eventually(lambda: mailbox.messages, timeout=20)
    [mail] = mailbox.messages
    assert mail["To"] == CITIZEN["email"] and "Kredietbank Utrecht" in mail.get_content()

    # The page: log in with the stand-in by keyboard, see the share.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{platform.base_url}/inzage")
    assert "niet DigiD" in browser.find_element(By.CSS_SELECTOR, "[role=note]").text
    field = browser.find_element(By.ID, "bsn")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=bsn]").text.startswith("Burgerservicenummer")
    field.send_keys(CITIZEN["bsn"], Keys.ENTER)
    eventually(lambda: browser.find_elements(By.CSS_SELECTOR, "tr.share"), timeout=10)
    [row] = browser.find_elements(By.CSS_SELECTOR, "tr.share")
    assert row.is_displayed()
    assert "Kredietbank Utrecht" in row.text and "schulden" in row.text and "e-mail" in row.text
    assert browser.find_element(By.TAG_NAME, "h1").text == "Mijn gegevens in het ketenoverleg"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "inzage-phone.png"
    assert row.screenshot(str(SCREENSHOTS / "inzage-share.png"))
    assert browser.save_screenshot(str(shot))
    _assert_shows_content(shot)

    # Accessible: axe-core finds no WCAG 2.1 A/AA violation.
    from axe_selenium_python import Axe

    axe = Axe(browser)
    axe.inject()
    browser.set_script_timeout(60)
    report = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
        ".then(done).catch(error => done({error: String(error)}));"
    )
    assert "error" not in report, report
    assert report["violations"] == [], axe.report(report["violations"])
    assert len(report["passes"]) > 10, "axe checked the page"

    # In English, and the copy to download, with the same session.
    browser.find_element(By.LINK_TEXT, "English").click()
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert "What was shared" in browser.page_source
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    copy = requests.get(f"{platform.base_url}/inzage/copy?format=json", cookies=cookies, timeout=10)
    assert copy.status_code == 200 and "attachment" in copy.headers["Content-Disposition"]
    [case] = json.loads(copy.content)["cases"]
    assert case["shares"][0]["share_id"] == result.share_id
    pdf = requests.get(f"{platform.base_url}/inzage/copy?format=pdf", cookies=cookies, timeout=10)
    assert pdf.content.startswith(b"%PDF") and pdf.headers["Content-Type"] == "application/pdf"

    # Logging out ends the session on the page.
    browser.find_element(By.CSS_SELECTOR, "form[action^='/inzage/logout'] button").send_keys(Keys.ENTER)
    eventually(lambda: browser.find_elements(By.ID, "bsn"), timeout=10)


def test_no_citizen_sees_another_citizens_overview_and_agencies_never_do(platform):
    client = Client(platform.base_url, platform.credentials())
    client.wait_healthy()
    neighbour = register_case_command(str(uuid.uuid4()))
    neighbour["subjects"][0] = {**neighbour["subjects"][0], "bsn": NEIGHBOUR_BSN, "name": "Piet Buur"}
    client.call("POST", "/api/cases", json=neighbour)
    run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())

    def overview(bsn: str) -> dict:
        token = client.call("POST", "/api/citizen/session", json={"bsn": bsn})["token"]
        return client.call("GET", "/api/citizen/overview", headers={"Authorization": f"Bearer {token}"})

    neighbours = eventually(lambda: overview(NEIGHBOUR_BSN)["cases"], timeout=15)
    assert [c["case_id"] for c in neighbours] == [neighbour["case_id"]]
    assert all(c["shares"] == [] for c in neighbours)
    citizens = overview(CITIZEN["bsn"])["cases"]
    assert neighbour["case_id"] not in [c["case_id"] for c in citizens]

    # No session, a forged one, or an agency's signature: no overview.
    assert requests.get(f"{platform.base_url}/api/citizen/overview", timeout=10).status_code == 403
    forged = {"Authorization": "Bearer eyJzdWIiOiAieCJ9.0000"}
    assert (
        requests.get(f"{platform.base_url}/api/citizen/overview", headers=forged, timeout=10).status_code
        == 403
    )
    page = requests.get(f"{platform.base_url}/inzage", cookies={"keten_citizen": "forged.0"}, timeout=10)
    assert page.status_code == 200 and 'id="bsn"' in page.text and 'tr class="share"' not in page.text
    assert requests.get(f"{platform.base_url}/inzage/copy", timeout=10).status_code == 403


def test_a_citizen_who_prefers_paper_gets_a_letter(platform, mailbox):
    client = Client(platform.base_url, platform.credentials())
    client.wait_healthy()
    command = register_case_command(str(uuid.uuid4()))
    command["subjects"][0]["preferred_channel"] = "letter"
    client.call("POST", "/api/cases", json=command)
    client.call("POST", f"/api/cases/{command['case_id']}/activate", json={"schema_version": 1})
    share = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "request_id": str(uuid.uuid4()),
        "case_id": command["case_id"],
        "subject_bsn": CITIZEN["bsn"],
        "to_agencies": ["kredietbank-utrecht"],
        "categories": ["debts"],
        "purpose": "debt_assistance",
        "form": "oral",
    }
    client.retry_until("data_sharing knows the case", lambda: client.call("POST", "/api/shares", json=share))
    letters = Path(platform.env["KETEN_LETTER_DIR"])
    [letter] = eventually(lambda: list(letters.glob("*.pdf")), timeout=20)
    assert letter.read_bytes().startswith(b"%PDF")
    assert mailbox.messages == []


def test_a_deferred_notification_goes_out_with_the_explanation_when_the_agency_ends_it(platform, mailbox):
    result = run_demo(platform.base_url, out=lambda *_: None, credentials=platform.credentials())
    eventually(lambda: mailbox.messages, timeout=20)
    app = platform.app("notification")
    subject = pseudonymise(CITIZEN["bsn"], platform.settings.pseudonym_secret)
    case_id, override_id = uuid.UUID(result.case_id), uuid.uuid4()
    explanation = "Wij hebben gedeeld om uw kinderen te beschermen."
    app.learn(override_event(None, case_id, override_id, explanation, True, date.today(), app, subject))
    # A share under the override, made here from the demo's own share so that the e-mail path is
    # what is tested; the way through the consent and data_sharing services is test_ketenoverleg's.
    sharing = platform.app("data_sharing")
    [shared] = [e for e in received(sharing) if e.name == "DataShared"]
    data = dataclasses.replace(
        shared.data, share_id=uuid.uuid4(), request_id=uuid.uuid4(), override_id=override_id
    )
    app.notify_share(dataclasses.replace(shared, position=shared.position + 1000, data=data))

    time.sleep(1.5)  # several delivery runs
    assert len(mailbox.messages) == 1, "held while deferred"
    utrecht, kredietbank = platform.credentials(), platform.credentials("kredietbank-utrecht")
    due = signed_request("GET", platform.base_url, "/api/deferrals/due", None, utrecht).json()
    assert [d["override_id"] for d in due["deferrals"]] == [str(override_id)] and due["deferrals"][0][
        "held"
    ] == 1
    path = f"/api/deferrals/{override_id}/end"
    body = {"schema_version": 1}
    refused = signed_request("POST", platform.base_url, path, body, kredietbank)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "not_your_deferral")
    ended = signed_request("POST", platform.base_url, path, body, utrecht)
    assert ended.status_code == 200 and ended.json()["released"] == 1

    eventually(lambda: len(mailbox.messages) == 2, timeout=20)
    assert explanation in mailbox.messages[1].get_content()
    token = requests.post(
        f"{platform.base_url}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=10
    )
    page = requests.get(
        f"{platform.base_url}/inzage", cookies={"keten_citizen": token.json()["token"]}, timeout=10
    )
    assert explanation in page.text and page.text.count('class="share"') == 2


def _assert_shows_content(path: Path) -> None:
    """The screenshot is a rendered page, not blank: many distinct colours of text and layout."""
    from PIL import Image

    image = Image.open(io.BytesIO(path.read_bytes())).convert("RGB")
    assert image.width >= 400 and len(set(image.getdata())) > 20
