"""A ketenoverleg through the services' own entrypoints on in-memory stores: the case's
lifecycle, consent and objection, safety overrides, and the complaints of the Ombudsman's report
retold as scenarios, each ending the way the report says it should."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from keten.demo import CITIZEN, close_case_command, register_case_command
from shared.pseudonym import pseudonymise
from tests.factories import (
    DAUGHTER,
    FATHER,
    MOTHER,
    SON,
    activate_command,
    consent_command,
    family_case_command,
    objection_command,
    override_command,
    received,
    share_command,
)
from tests.wired import WiredPlatform


@pytest.fixture
def platform(memory_settings):
    return WiredPlatform(memory_settings)


def start(platform: WiredPlatform, command: dict) -> str:
    platform.command("case_registration", "register_case", command)
    platform.command(
        "case_registration", "activate_case", activate_command(command["case_id"], command["agency"])
    )
    return command["case_id"]


def share(platform: WiredPlatform, case_id: str, **changes) -> dict:
    [decision] = platform.command("data_sharing", "request_share", share_command(case_id, **changes))[
        "decisions"
    ]
    return decision


def family_share(platform, case_id, subject, **changes) -> dict:
    fields = {
        "agency": "gemeente-utrecht",
        "subject_bsn": subject["bsn"],
        "to_agencies": ["raad-kinderbescherming"],
        "categories": ["safety_concerns"],
        "purpose": "youth_protection",
        "content": "Zorgen over de veiligheid thuis.",
    }
    fields.update(changes)
    return share(platform, case_id, **fields)


def overview_case(platform, person, case_id, language="nl") -> dict:
    subject = pseudonymise(person["bsn"], platform.apps["notification"].settings.pseudonym_secret)
    overview = platform.services["notification"].get_overview(subject, language)
    [case] = [c for c in overview["cases"] if c["case_id"] == str(case_id)]
    return case


def events(platform, service) -> list:
    return [e.name for e in received(platform.apps[service])]


# -- the case's lifecycle -------------------------------------------------------------------


def test_nothing_is_shared_in_a_case_until_the_table_activates_it(platform):
    command = register_case_command(str(uuid.uuid4()))
    platform.command("case_registration", "register_case", command)
    error = platform.refusal("data_sharing", "request_share", share_command(command["case_id"]))
    assert (error.status, error.code) == (409, "case_not_active")

    answer = platform.command("case_registration", "activate_case", activate_command(command["case_id"]))
    assert answer["status"] == "active"
    assert share(platform, command["case_id"])["outcome"] == "shared"


def test_consent_is_no_ground_for_an_agency_the_citizen_depends_on_for_help(platform):
    command = register_case_command(str(uuid.uuid4()))
    command.update(table="buurtteam-overleg", purpose="care_coordination", record_holder="wijkteam-utrecht")
    command["contact_point"] = {"agency": "wijkteam-utrecht", "function": "buurtteammedewerker"}
    command["participants"] = [
        {"agency": "wijkteam-utrecht", "role": "coordinator", "legal_ground": "consent"},
        {"agency": "gemeente-utrecht", "role": "municipality", "legal_ground": "statutory_task"},
    ]
    error = platform.refusal("case_registration", "register_case", command)
    assert (error.code, error.field) == ("consent_not_free", "participants")
    assert "statutory_task" in error.message  # it says which ground to use instead


def test_an_agency_joins_and_leaves_a_case_with_a_reason_and_only_a_participant_receives(platform):
    case_id = start(platform, family_case_command(participants=family_case_command()["participants"][:3]))
    assert family_share(platform, case_id, DAUGHTER, to_agencies=["ggd-regio-utrecht"]) is not None
    join = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "case_id": case_id,
        "participant": {
            "agency": "ggd-regio-utrecht",
            "role": "health_professional",
            "legal_ground": "statutory_task",
        },
        "reason": "De jeugdarts kent het gezin.",
    }
    platform.command("case_registration", "add_participant", join)
    assert family_share(platform, case_id, DAUGHTER, to_agencies=["ggd-regio-utrecht"])["outcome"] == "shared"

    leave = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "case_id": case_id,
        "participant": "ggd-regio-utrecht",
        "reason": "Geen rol meer.",
    }
    platform.command("case_registration", "remove_participant", leave)
    later = family_share(platform, case_id, DAUGHTER, to_agencies=["ggd-regio-utrecht"])
    assert (later["outcome"], later["reason_code"]) == ("refused", "recipient_not_participant")
    assert "De jeugdarts" not in str([e.data for e in received(platform.apps["case_registration"])])

    error = platform.refusal(
        "case_registration", "remove_participant", {**leave, "participant": "gemeente-utrecht"}
    )
    assert error.code == "invalid_case"  # the record holder and contact point stay


# -- objection and safety override ------------------------------------------------------------


def test_an_objection_stops_the_case_for_its_subject_and_a_share_about_them_is_refused_where_they_see_it(
    platform,
):
    case_id = start(platform, family_case_command())
    platform.command("consent", "lodge_objection", objection_command(case_id, MOTHER["bsn"]))

    assert "CaseStopped" in events(platform, "case_registration")
    refused = family_share(
        platform, case_id, MOTHER, categories=["identity"], to_agencies=["veilig-thuis-utrecht"]
    )
    assert (refused["outcome"], refused["reason_code"]) == ("refused", "objection_lodged")
    # the case goes on for the others
    assert family_share(platform, case_id, FATHER)["outcome"] == "shared"

    [seen] = overview_case(platform, MOTHER, case_id)["refusals"]
    assert seen["reason"].startswith("U heeft bezwaar gemaakt")
    assert "kunt u uw bezwaar intrekken bij uw contactpersoon" in seen["reason"]
    assert seen["to_name"] == "Veilig Thuis regio Utrecht"
    assert "bespreken" not in str(received(platform.apps["consent"])[-1].data)  # her words are sealed


def test_once_every_subject_objected_the_case_is_stopped_and_its_records_get_their_end_date(platform):
    command = register_case_command(str(uuid.uuid4()))
    case_id = start(platform, command)
    platform.command("consent", "lodge_objection", objection_command(case_id))

    schedule = platform.apps["retention"].schedule_for(uuid.UUID(case_id))
    [case_records] = [r for r in schedule if r.record_kind == "case_records"]
    assert case_records.due_at is not None
    assert platform.apps["data_sharing"].cases.get(case_id).status == "stopped"

    objection_id = received(platform.apps["consent"])[-1].data.objection_id
    withdrawal = objection_command(case_id, objection_id=str(objection_id))
    withdrawal.pop("reason")
    platform.command("consent", "withdraw_objection", withdrawal)
    assert platform.apps["data_sharing"].cases.get(case_id).status == "active"
    assert share(platform, case_id)["outcome"] == "shared"


def test_a_safety_override_lets_a_share_through_within_its_scope_and_no_further(platform):
    case_id = start(platform, family_case_command())
    for child in (DAUGHTER, SON):
        platform.command("consent", "lodge_objection", objection_command(case_id, child["bsn"], reason=None))
    override = platform.command(
        "consent", "record_safety_override", override_command(case_id, [DAUGHTER["bsn"]])
    )

    allowed = family_share(platform, case_id, DAUGHTER, agency="veilig-thuis-utrecht")
    assert (allowed["outcome"], allowed["override_id"]) == ("shared", override["override_id"])
    shared = [e for e in received(platform.apps["data_sharing"]) if e.name == "DataShared"]
    assert str(shared[-1].data.override_id) == override["override_id"]

    sibling = family_share(platform, case_id, SON, agency="veilig-thuis-utrecht")
    assert sibling["reason_code"] == "objection_lodged"  # an override for one child is none for another
    elsewhere = family_share(
        platform, case_id, DAUGHTER, agency="veilig-thuis-utrecht", to_agencies=["gemeente-utrecht"]
    )
    assert elsewhere["reason_code"] == "objection_lodged"

    end = {
        "schema_version": 1,
        "agency": "veilig-thuis-utrecht",
        "override_id": override["override_id"],
        "reason_code": "risk_resolved",
    }
    assert platform.command("consent", "end_safety_override", end)["status"] == "ended"
    assert (
        family_share(platform, case_id, DAUGHTER, agency="veilig-thuis-utrecht")["reason_code"]
        == "objection_lodged"
    )


def test_an_override_with_a_deferral_records_when_the_subject_will_be_told(platform):
    case_id = start(platform, family_case_command())
    review = (date.today() + timedelta(days=14)).isoformat()
    command = override_command(
        case_id, [MOTHER["bsn"]], deferral={"reason": "Vader mag nog niet weten dat...", "review_on": review}
    )
    platform.command("consent", "record_safety_override", command)
    [event] = [e for e in received(platform.apps["consent"]) if e.name == "SafetyOverrideRecorded"]
    assert event.data.deferral.review_on.isoformat() == review
    recorded_by = event.data.recorded_by
    assert recorded_by.agency == "veilig-thuis-utrecht"
    assert platform.apps["consent"].vault.open(recorded_by.function) == "aandachtsfunctionaris"
    for words in ("Vader", "gevaar", "aandachtsfunctionaris"):
        assert words not in str(event.data)


BAD_OVERRIDES = [
    ({"ground": "because_we_can"}, "invalid_override", "ground"),
    ({"ends_on": (date.today() + timedelta(days=400)).isoformat()}, "invalid_override", "ends_on"),
    ({"subject_bsns": [CITIZEN["bsn"]]}, "not_a_subject", "subject_bsns"),
    ({"recipients": ["uwv"]}, "not_a_participant", "recipients"),
    ({"categories": ["shoe_size"]}, "unknown_category", "categories"),
    (
        {"deferral": {"reason": "x", "review_on": (date.today() + timedelta(days=90)).isoformat()}},
        "invalid_override",
        "deferral.review_on",
    ),
]


@pytest.mark.parametrize(("changes", "code", "field"), BAD_OVERRIDES)
def test_a_bad_safety_override_gets_a_clear_error_and_changes_nothing(platform, changes, code, field):
    case_id = start(platform, family_case_command())
    error = platform.refusal(
        "consent", "record_safety_override", {**override_command(case_id, [MOTHER["bsn"]]), **changes}
    )
    assert (error.code, error.field) == (code, field)


def test_bad_share_requests_get_a_clear_error_and_change_nothing(platform):
    case_id = start(platform, register_case_command(str(uuid.uuid4())))
    cases = [
        (share_command(str(uuid.uuid4())), 404, "unknown_case"),
        (share_command(case_id, categories=["shoe_size"]), 400, "unknown_category"),
        (share_command(case_id, request_id="not-a-uuid"), 400, "invalid_field"),
        (share_command(case_id, agency="politie-midden-nederland"), 403, "not_a_participant"),
        (share_command(case_id, subject_bsn=MOTHER["bsn"]), 400, "not_a_subject"),
    ]
    for command, status, code in cases:
        error = platform.refusal("data_sharing", "request_share", command)
        assert (error.status, error.code) == (status, code)
        assert MOTHER["bsn"] not in error.message


# -- the report's complaints, retold --------------------------------------------------------


def test_a_share_outside_the_agreed_categories_is_refused_without_alarming_the_citizen(platform):
    case_id = start(platform, register_case_command(str(uuid.uuid4())))
    refused = share(platform, case_id, to_agencies=["woningcorporatie-mitros"], categories=["income"])
    assert (refused["outcome"], refused["reason_code"]) == ("refused", "category_not_agreed")
    assert "Mitros" in refused["reason"] and "income and benefits" in refused["reason"]
    assert "ShareRefused" in events(platform, "data_sharing")  # on record for the agencies
    assert overview_case(platform, CITIZEN, case_id)["refusals"] == []  # an agency's own slip


def zorg_en_veiligheid_case() -> dict:
    command = register_case_command(str(uuid.uuid4()))
    command.update(table="zorg-en-veiligheidshuis", purpose="care_coordination")
    command["participants"] = [
        {"agency": "gemeente-utrecht", "role": "coordinator", "legal_ground": "statutory_task"},
        {"agency": "politie-midden-nederland", "role": "police", "legal_ground": "legal_obligation"},
        {"agency": "uwv", "role": "benefits_provider", "legal_ground": "legal_obligation"},
    ]
    return command


def test_the_police_cannot_pass_detention_status_to_the_benefits_agency_which_does_not_need_it(platform):
    case_id = start(platform, zorg_en_veiligheid_case())
    police = {"agency": "politie-midden-nederland", "to_agencies": ["uwv"], "purpose": "care_coordination"}
    refused = share(
        platform,
        case_id,
        **police,
        categories=["detention_status"],
        special_grounds={"detention_status": "criminal_data_statutory"},
    )
    assert (refused["outcome"], refused["reason_code"]) == ("refused", "category_not_agreed")
    assert refused["reason"].startswith("Under this case's data agreement, UWV does not need data about")
    # the same question, the other way round: UWV asking for it is decided the same way
    pulled = share(
        platform,
        case_id,
        agency="uwv",
        from_agency="politie-midden-nederland",
        to_agencies=["uwv"],
        purpose="care_coordination",
        categories=["detention_status"],
        direction="pull",
    )
    assert pulled["reason_code"] == "category_not_agreed"
    # what UWV may get is the police's conclusion, without the data under it
    conclusion = share(platform, case_id, **police, categories=["professional_conclusion"])
    assert conclusion["outcome"] == "shared"


def test_one_childs_sensitive_details_are_shared_about_that_child_and_never_shown_to_a_sibling(platform):
    case_id = start(platform, family_case_command())
    health = family_share(
        platform,
        case_id,
        DAUGHTER,
        agency="ggd-regio-utrecht",
        categories=["mental_health"],
        special_grounds={"mental_health": "child_protection"},
    )
    assert health["outcome"] == "shared"
    assert len(overview_case(platform, DAUGHTER, case_id)["shares"]) == 1
    assert overview_case(platform, SON, case_id)["shares"] == []


def test_recordings_about_a_parent_are_shared_only_where_that_parent_is_a_subject_who_is_told(platform):
    without_mother = family_case_command()
    without_mother["subjects"] = [
        {"bsn": FATHER["bsn"], "role": "citizen", "name": FATHER["name"]},
        {
            "bsn": SON["bsn"],
            "role": "child",
            "name": SON["name"],
            "minor": True,
            "represented_by_bsn": FATHER["bsn"],
        },
    ]
    case_id = start(platform, without_mother)
    recordings = {"categories": ["safety_concerns"], "content_reference": "opnamen-ruzie-2026-10"}
    error = platform.refusal(
        "data_sharing",
        "request_share",
        share_command(
            case_id,
            **{
                **recordings,
                "subject_bsn": MOTHER["bsn"],
                "to_agencies": ["raad-kinderbescherming"],
                "purpose": "youth_protection",
            },
        ),
    )
    assert error.code == "not_a_subject"  # she must be on the case, and so be told, first

    family_id = start(platform, family_case_command())
    shared = family_share(platform, family_id, MOTHER, **recordings)
    assert shared["outcome"] == "shared"
    [told] = overview_case(platform, MOTHER, family_id)["shares"]
    assert (told["from_name"], told["to_name"]) == ("Gemeente Utrecht", "Raad voor de Kinderbescherming")
    assert told["notification"]["status"] == "delivered", "on the portal: the entry is the message"


def test_a_consent_form_silent_about_the_school_lets_nothing_go_to_the_school(platform):
    command = register_case_command(str(uuid.uuid4()))
    command.update(
        agency="wijkteam-utrecht",
        table="buurtteam-overleg",
        purpose="care_coordination",
        record_holder="wijkteam-utrecht",
    )
    command["contact_point"] = {"agency": "wijkteam-utrecht", "function": "buurtteammedewerker"}
    command["participants"] = [
        {"agency": "wijkteam-utrecht", "role": "coordinator", "legal_ground": "statutory_task"},
        {"agency": "huisarts-de-linde", "role": "general_practitioner", "legal_ground": "consent"},
        {"agency": "school-het-baken", "role": "school", "legal_ground": "statutory_task"},
    ]
    command["agreement"] = [
        {"agency": "wijkteam-utrecht", "bring": ["care_request"], "receive": ["professional_conclusion"]},
        {"agency": "huisarts-de-linde", "bring": ["professional_conclusion"], "receive": ["care_request"]},
        {
            "agency": "school-het-baken",
            "bring": ["school_attendance"],
            "receive": ["professional_conclusion"],
        },
    ]
    case_id = start(platform, command)
    consent = consent_command(
        case_id,
        agency="wijkteam-utrecht",
        purpose="care_coordination",
        categories=["professional_conclusion"],
        recipients=["wijkteam-utrecht"],
    )
    platform.command("consent", "give_consent", consent)
    gp = {
        "agency": "huisarts-de-linde",
        "purpose": "care_coordination",
        "categories": ["professional_conclusion"],
    }

    assert share(platform, case_id, **gp, to_agencies=["wijkteam-utrecht"])["outcome"] == "shared"
    school = share(platform, case_id, **gp, to_agencies=["school-het-baken"])
    assert (school["outcome"], school["reason_code"]) == ("refused", "no_valid_consent")
    [seen] = overview_case(platform, CITIZEN, case_id)["refusals"]
    assert seen["reason"] == (
        "Huisartsenpraktijk De Linde deelt alleen met uw toestemming, en u heeft geen toestemming "
        "gegeven om dit met Basisschool Het Baken te delen. Wilt u dat wel, of juist niet? Zeg het "
        "Huisartsenpraktijk De Linde: u mag toestemming geven en u mag weigeren. Uw contactpersoon "
        "voor deze casus helpt u daarbij."
    )

    platform.command(
        "consent",
        "withdraw_consent",
        {
            "schema_version": 1,
            "agency": "wijkteam-utrecht",
            "case_id": case_id,
            "subject_bsn": CITIZEN["bsn"],
        },
    )
    after = share(platform, case_id, **gp, to_agencies=["wijkteam-utrecht"])
    assert after["reason_code"] == "no_valid_consent"  # withdrawn consent holds nothing


def test_a_deferred_notice_under_a_safety_override_reaches_the_citizen_only_when_the_deferral_ends(
    platform,
):
    """Issue 4's done-when through the real services: the mother objected, Veilig Thuis shares
    her data under a safety override whose notice it deferred; she learns of it, with the
    explanation, only when the professional ends the deferral."""
    case_id = start(platform, family_case_command())
    platform.command("consent", "lodge_objection", objection_command(case_id, MOTHER["bsn"], reason=None))
    explanation = "Wij hebben gedeeld om de kinderen te beschermen; u kunt ons daarover bellen."
    review = date.today() + timedelta(days=7)
    command = override_command(
        case_id,
        [MOTHER["bsn"]],
        explanation=explanation,
        deferral={"reason": "Het onderzoek loopt nog.", "review_on": review.isoformat()},
    )
    override = platform.command("consent", "record_safety_override", command)
    shared = family_share(platform, case_id, MOTHER, agency="veilig-thuis-utrecht")
    assert (shared["outcome"], shared["override_id"]) == ("shared", override["override_id"])

    held = overview_case(platform, MOTHER, case_id)
    assert held["shares"] == [] and held["overrides"] == [], "nothing tells her while it is deferred"
    notifications = platform.apps["notification"]
    assert notifications.deferrals_due("veilig-thuis-utrecht") == [], "not due before its review date"
    [due] = notifications.deferrals_due("veilig-thuis-utrecht", today=review)
    assert (str(due.override_id), due.held) == (override["override_id"], 1)

    end = {"schema_version": 1, "agency": "veilig-thuis-utrecht", "override_id": override["override_id"]}
    assert platform.command("notification", "end_deferral", end)["released"] == 1

    told = overview_case(platform, MOTHER, case_id)
    [share_entry] = told["shares"]
    assert share_entry["to_name"] == "Raad voor de Kinderbescherming"
    assert share_entry["notification"]["status"] != "deferred"
    [shown] = told["overrides"]
    assert shown["explanation"] == explanation
    assert notifications.deferrals_due("veilig-thuis-utrecht", today=review) == []


def test_the_explanation_of_an_override_stays_as_long_as_the_shares_it_explains(platform):
    """The minutes (and the case's own key) go weeks after closing; the share records and what
    the citizen is owed about them stay for years: the explanation stays with them."""
    case_id = start(platform, family_case_command())
    platform.command("consent", "lodge_objection", objection_command(case_id, MOTHER["bsn"], reason=None))
    explanation = "Wij hebben gedeeld om de kinderen te beschermen."
    platform.command(
        "consent",
        "record_safety_override",
        override_command(case_id, [MOTHER["bsn"]], explanation=explanation),
    )
    assert family_share(platform, case_id, MOTHER, agency="veilig-thuis-utrecht")["outcome"] == "shared"
    platform.command("case_registration", "close_case", {**close_case_command(), "case_id": case_id})

    retention = platform.apps["retention"]
    due = {r.record_kind: r.due_at for r in retention.schedule_for(uuid.UUID(case_id))}
    assert due["case_records"] < due["share_records"]
    retention.purge_due(due["case_records"] + timedelta(days=1))  # the minutes
    platform.sync()
    case = overview_case(platform, MOTHER, case_id)
    assert "case_records" in {p["record_kind"] for p in case["purged"]}
    assert [o["explanation"] for o in case["overrides"]] == [explanation]

    retention.purge_due(due["share_records"] + timedelta(days=1))  # the shares
    platform.sync()
    assert explanation not in str(overview_case(platform, MOTHER, case_id))
