"""Content about more than one person: a report about both parents names them both. Each must be
a subject of the case, each one's say (objection, consent) decides, and each is told. Through the
services' own entrypoints on in-memory stores."""

from __future__ import annotations

import uuid

import pytest

from keten.demo import CITIZEN
from services.notification.delivery import Contact
from services.notification.domain import notification_id
from shared.pseudonym import pseudonymise
from tests.factories import (
    FATHER,
    MOTHER,
    activate_command,
    family_case_command,
    objection_command,
    override_command,
    received,
)
from tests.wired import WiredPlatform


@pytest.fixture
def platform(memory_settings):
    platform = WiredPlatform(memory_settings)
    command = family_case_command()
    platform.command("case_registration", "register_case", command)
    platform.command("case_registration", "activate_case", activate_command(command["case_id"]))
    platform.case_id = command["case_id"]
    return platform


def about_both_parents(platform, **changes) -> dict:
    """Gemeente Utrecht shares its concerns about the mother, with the Child Protection Board:
    the report is also about the father."""
    return {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "request_id": "5d6bd3c4-0d1c-4c55-9a0e-6b1f2c3d4e5f",
        "case_id": platform.case_id,
        "subject_bsn": MOTHER["bsn"],
        "also_about": [FATHER["bsn"]],
        "to_agencies": ["raad-kinderbescherming"],
        "categories": ["safety_concerns"],
        "purpose": "youth_protection",
        "content": "Beide ouders: ruzies thuis, politie twee keer geweest.",
        **changes,
    }


def pseudonym(platform, person) -> str:
    return pseudonymise(person["bsn"], platform.apps["notification"].settings.pseudonym_secret)


def case_of(platform, person, language="en") -> dict:
    overview = platform.services["notification"].get_overview(pseudonym(platform, person), language)
    [case] = [c for c in overview["cases"] if c["case_id"] == platform.case_id]
    return case


def test_a_share_about_both_parents_is_on_each_ones_overview_and_each_is_told(platform):
    answer = platform.command("data_sharing", "request_share", about_both_parents(platform))
    assert answer["outcome"] == "shared"
    [shared] = [e for e in received(platform.apps["data_sharing"]) if e.name == "DataShared"]
    assert shared.data.also_about == (pseudonym(platform, FATHER),)
    for person in (MOTHER, FATHER):
        [share] = case_of(platform, person)["shares"]
        assert share["share_id"] == answer["decisions"][0]["share_id"]
        # each reads it as their own, with their own pseudonym and nobody else's
        assert share["subject"] == pseudonym(platform, person)
        assert pseudonym(platform, MOTHER if person is FATHER else FATHER) not in str(share)
        assert share["notification"]["status"] in ("scheduled", "delivered")
    scheduled = [e for e in received_own(platform) if type(e).__name__ == "NotificationScheduled"]
    assert {e.subject for e in scheduled} == {pseudonym(platform, MOTHER), pseudonym(platform, FATHER)}


def received_own(platform) -> list:
    """The notification service's own events, as stored."""
    app = platform.apps["notification"]
    return [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=1000)]


def test_an_objection_of_the_other_parent_stops_the_share_and_they_see_why(platform):
    platform.command("consent", "lodge_objection", objection_command(platform.case_id, FATHER["bsn"]))
    answer = platform.command("data_sharing", "request_share", about_both_parents(platform))
    [decision] = answer["decisions"]
    assert (decision["outcome"], decision["reason_code"]) == ("refused", "objection_lodged")
    [refused] = [e for e in received(platform.apps["data_sharing"]) if e.name == "ShareRefused"]
    assert refused.data.subject == pseudonym(platform, FATHER) and refused.data.visible_to_subject
    [seen] = case_of(platform, FATHER)["refusals"]
    assert seen["reason_code"] == "objection_lodged"
    assert case_of(platform, MOTHER)["shares"] == []


@pytest.mark.parametrize(
    ("also_about", "code", "field"),
    [([CITIZEN["bsn"]], "not_a_subject", "also_about"), (["123456789"], "invalid_field", "also_about.0")],
    ids=["a person who is no subject of the case", "not a BSN"],
)
def test_a_person_the_content_is_also_about_must_be_a_subject_of_the_case(platform, also_about, code, field):
    error = platform.refusal(
        "data_sharing", "request_share", about_both_parents(platform, also_about=also_about)
    )
    assert (error.status, error.code, error.field) == (400, code, field)
    assert CITIZEN["bsn"] not in str(error)


def test_only_the_parent_who_objected_reads_that_it_went_ahead_despite_their_objection(platform):
    platform.command("consent", "lodge_objection", objection_command(platform.case_id, FATHER["bsn"]))
    platform.command(
        "consent",
        "record_safety_override",
        override_command(platform.case_id, [FATHER["bsn"], MOTHER["bsn"]]),
    )
    answer = platform.command("data_sharing", "request_share", about_both_parents(platform))
    [decision] = answer["decisions"]
    assert decision["outcome"] == "shared" and decision["override_id"]
    app = platform.apps["notification"]

    def notice(person) -> str:
        told = app.repository.get(
            notification_id(uuid.UUID(decision["share_id"]), pseudonym(platform, person))
        )
        return app._notice([told], Contact(language="nl"), "message-1").body

    assert "terwijl u bezwaar had gemaakt" in notice(FATHER)
    hers = notice(MOTHER)
    assert "terwijl u bezwaar had gemaakt" not in hers and "nu pas" not in hers
    assert "toch gedeeld, omdat" in hers  # the override is explained to her too
