"""A request with one allowed and one refused category is partly shared: the citizen sees what
went through and what was held back, and why, on their overview, their page and their copy.
Through the services' own entrypoints on in-memory stores."""

from __future__ import annotations

import uuid

import pytest

from keten.demo import CITIZEN, register_case_command
from services.gateway import pages
from services.notification.delivery import Contact
from services.notification.domain import notification_id
from shared.pseudonym import pseudonymise
from tests.factories import activate_command, share_command
from tests.wired import WiredPlatform

#: The credit bank gives the housing corporation its conclusion; the corporation does not need
#: the debts themselves for the purpose (the case's data agreement), so those are held back.
MIXED = {
    "agency": "kredietbank-utrecht",
    "to_agencies": ["woningcorporatie-mitros"],
    "categories": ["professional_conclusion", "debts"],
}


@pytest.fixture
def platform(memory_settings):
    platform = WiredPlatform(memory_settings)
    command = register_case_command(str(uuid.uuid4()))
    platform.command("case_registration", "register_case", command)
    platform.command("case_registration", "activate_case", activate_command(command["case_id"]))
    platform.case_id = command["case_id"]
    return platform


def overview(platform, language="en") -> dict:
    subject = pseudonymise(CITIZEN["bsn"], platform.apps["notification"].settings.pseudonym_secret)
    return platform.services["notification"].get_overview(subject, language)


def test_a_partial_share_shows_the_citizen_what_went_through_and_what_was_held_back(platform):
    answer = platform.command("data_sharing", "request_share", share_command(platform.case_id, **MIXED))
    assert answer["outcome"] == "partial"
    [case] = overview(platform)["cases"]
    [share] = case["shares"]
    assert share["categories"] == ["professional_conclusion"]
    [refusal] = case["refusals"]
    assert refusal["categories"] == ["debts"]
    assert refusal["beside_share"] is True
    assert refusal["reason_code"] == "category_not_agreed"
    assert "does not need data about" in refusal["reason"]


def test_the_page_and_the_copy_name_the_refused_category_beside_the_share(platform):
    platform.command("data_sharing", "request_share", share_command(platform.case_id, **MIXED))
    shown = overview(platform, "nl")
    [case] = shown["cases"]
    [refusal] = case["refusals"]
    [label] = refusal["category_labels"]
    for words in (pages.overview_page(shown, "nl", "csrf"), pages.overview_text(shown, "nl")):
        assert f"{label}, Kredietbank" in words
        assert "de rest van dit verzoek is wel gedeeld" in words


def test_the_page_and_the_copy_name_the_law_and_article_the_share_rests_on(platform):
    platform.command("data_sharing", "request_share", share_command(platform.case_id, **MIXED))
    shown = overview(platform, "nl")
    [share] = shown["cases"][0]["shares"]
    assert share["provision_citation"] == "Wet gemeentelijke schuldhulpverlening, art. 3"
    for words in (pages.overview_page(shown, "nl", "csrf"), pages.overview_text(shown, "nl")):
        assert "Wet gemeentelijke schuldhulpverlening, art. 3" in words


def test_the_notice_of_a_partial_share_says_what_was_not_shared_and_why(platform):
    platform.command("data_sharing", "request_share", share_command(platform.case_id, **MIXED))
    app = platform.apps["notification"]
    subject = pseudonymise(CITIZEN["bsn"], app.settings.pseudonym_secret)
    [share] = overview(platform)["cases"][0]["shares"]
    notification = app.repository.get(notification_id(uuid.UUID(share["share_id"]), subject))
    body = app._notice([notification], Contact(language="en"), "message-1").body
    assert "- What information: a professional's conclusion, without the underlying data" in body
    assert "- Not shared: debts and payment arrears. Under this case's data agreement" in body
    # nothing else changed in the notice: the line after it is where it always was
    assert "- How: on paper or digitally\n- Not shared:" in body
