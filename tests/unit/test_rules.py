"""The rules every share decision keeps (docs/architecture.md), one row per rule: the request, what
is on record, and the decision a professional (and, where it concerns them, the citizen) reads."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from uuid import uuid4

import pytest

from services.data_sharing.domain import SafetyOverride, ShareRequest, SubjectSay, decide, decide_per_category
from shared.caseview import CaseView, ParticipantFacts
from shared.catalogue import load_catalogue
from shared.pseudonym import pseudonymise
from shared.reasons import refusal_text, share_refusals
from tests.factories import DAUGHTER, MOTHER, SON, activate_command, family_case_command
from tests.wired import WiredPlatform

TODAY = date(2026, 11, 29)
CATALOGUE = load_catalogue()


@pytest.fixture
def family(memory_settings):
    """The family's case as data_sharing knows it once it is registered and active."""
    platform = WiredPlatform(memory_settings)
    command = family_case_command()
    platform.command("case_registration", "register_case", command)
    platform.command("case_registration", "activate_case", activate_command(command["case_id"]))
    case = platform.apps["data_sharing"].cases.get(command["case_id"])
    people = (("mother", MOTHER), ("daughter", DAUGHTER), ("son", SON))
    return case, {name: pseudonymise(p["bsn"], memory_settings.pseudonym_secret) for name, p in people}


def request(case: CaseView, subject: str, **changes) -> ShareRequest:
    fields = {
        "request_id": uuid4(),
        "case_id": case.case_id,
        "subject": subject,
        "from_agency": "gemeente-utrecht",
        "to_agency": "raad-kinderbescherming",
        "categories": ("safety_concerns",),
        "purpose": "youth_protection",
    }
    fields.update(changes)
    return ShareRequest(**fields)


def override(subjects, categories=("safety_concerns",), recipients=("raad-kinderbescherming",), **changes):
    fields = {
        "override_id": uuid4(),
        "subjects": tuple(subjects),
        "categories": tuple(categories),
        "recipients": tuple(recipients),
        "ends_on": TODAY + timedelta(days=30),
        "ended": False,
    }
    fields.update(changes)
    return SafetyOverride(**fields)


# (rule, what the case/request/say look like, expected reason code)
RULES = [
    ("1: an active case", {}, {}, {}, "allowed"),
    ("1: not while only registered", {"status": "registered"}, {}, {}, "case_not_active"),
    ("1: not once closed", {"status": "closed"}, {}, {}, "case_closed"),
    ("1: the sender takes part", {}, {"from_agency": "uwv"}, {}, "sender_not_participant"),
    (
        "1: the recipient takes part",
        {},
        {"to_agency": "politie-midden-nederland"},
        {},
        "recipient_not_participant",
    ),
    ("1: the case's purpose", {}, {"purpose": "debt_assistance"}, {}, "purpose_mismatch"),
    (
        "2: the sender may bring it",
        {},
        {"from_agency": "school-het-baken", "categories": ("safety_concerns",)},
        {},
        "category_not_brought",
    ),
    ("2: the recipient may receive it", {}, {"to_agency": "school-het-baken"}, {}, "category_not_agreed"),
    (
        "2: a conclusion without the data",
        {},
        {"to_agency": "school-het-baken", "categories": ("professional_conclusion",)},
        {},
        "allowed",
    ),
    (
        "3: special category needs its own ground",
        {},
        {"from_agency": "ggd-regio-utrecht", "categories": ("health",)},
        {},
        "special_category_without_ground",
    ),
    (
        "3: ...which the sender may rely on",
        {},
        {
            "from_agency": "ggd-regio-utrecht",
            "categories": ("health",),
            "special_grounds": {"health": "criminal_data_statutory"},
        },
        {},
        "special_category_without_ground",
    ),
    (
        "3: special category with its ground",
        {},
        {
            "from_agency": "ggd-regio-utrecht",
            "categories": ("health",),
            "special_grounds": {"health": "child_protection"},
        },
        {},
        "allowed",
    ),
    ("4: an objection stops the share", {}, {}, {"objection_id": "o-1"}, "objection_lodged"),
    (
        "4: an override in scope lets it through",
        {},
        {},
        {"objection_id": "o-1", "overrides": "in_scope"},
        "allowed",
    ),
    (
        "4: not another subject (a sibling)",
        {},
        {"subject": "son"},
        {"objection_id": "o-1", "overrides": "in_scope"},
        "objection_lodged",
    ),
    (
        "4: not another category",
        {},
        {"categories": ("identity",)},
        {"objection_id": "o-1", "overrides": "in_scope"},
        "objection_lodged",
    ),
    (
        "4: not another recipient",
        {},
        {"to_agency": "veilig-thuis-utrecht"},
        {"objection_id": "o-1", "overrides": "in_scope"},
        "objection_lodged",
    ),
    ("4: not once ended", {}, {}, {"objection_id": "o-1", "overrides": "ended"}, "objection_lodged"),
    (
        "4: not after its end date",
        {},
        {},
        {"objection_id": "o-1", "overrides": "expired"},
        "objection_lodged",
    ),
]


@pytest.mark.parametrize(
    ("rule", "case_changes", "request_changes", "say", "expected"), RULES, ids=[r[0] for r in RULES]
)
def test_each_rule_decides_the_share(family, rule, case_changes, request_changes, say, expected):
    case, people = family
    case = dataclasses.replace(case, **case_changes)
    changes = dict(request_changes)
    subject = people[changes.pop("subject", "daughter")]
    share = request(case, subject, **changes)
    overrides = {
        "in_scope": (override([people["daughter"]]),),
        "ended": (override([people["daughter"]], ended=True),),
        "expired": (override([people["daughter"]], ends_on=TODAY - timedelta(days=1)),),
    }.get(say.get("overrides", ""), ())
    decision = decide(
        share, case, SubjectSay(objection_id=say.get("objection_id"), overrides=overrides), CATALOGUE, TODAY
    )
    assert decision.reason_code == expected, rule
    assert decision.allowed == (expected == "allowed")
    if expected == "allowed":
        assert (decision.override_id is not None) == ("overrides" in say)
    else:
        # every refusal has a plain-language reason, in both languages, naming no code
        for language in ("nl", "en"):
            text = refusal_text(decision.reason_code, decision.reason_details, CATALOGUE, language)
            assert text and "_" not in text and "{" not in text


def test_consent_as_ground_holds_only_where_the_citizen_does_not_depend_on_the_sender(family):
    case, people = family
    gp_case = dataclasses.replace(
        case,
        participants={
            **case.participants,
            "ggd-regio-utrecht": ParticipantFacts(role="health_professional", legal_ground="consent"),
        },
    )
    share = request(
        gp_case, people["daughter"], from_agency="ggd-regio-utrecht", categories=("professional_conclusion",)
    )
    decision = decide(share, gp_case, SubjectSay(), CATALOGUE, TODAY)
    assert decision.reason_code == "consent_not_free"
    assert "GGD regio Utrecht" in refusal_text(decision.reason_code, decision.reason_details, CATALOGUE, "en")


def test_every_reason_code_is_documented_in_the_readme():
    with open("README.md", encoding="utf-8") as f:
        readme = f.read()
    for code in share_refusals():
        assert f"`{code}`" in readme, code


def test_a_refusal_the_citizen_should_know_of_is_visible_and_an_agencys_slip_is_not():
    reasons = share_refusals()
    assert reasons["objection_lodged"].visible_to_subject
    assert reasons["no_valid_consent"].visible_to_subject
    assert not reasons["category_not_agreed"].visible_to_subject
    assert not reasons["case_not_active"].visible_to_subject


# -- decisions per category ---------------------------------------------------------------------
def decided(decisions):
    return [(d.allowed, d.reason_code, d.categories) for d in decisions]


def test_the_allowed_categories_are_shared_and_a_refused_one_is_refused_with_its_reason(family):
    case, people = family
    to_school = request(
        case,
        people["daughter"],
        to_agency="school-het-baken",
        categories=("professional_conclusion", "safety_concerns"),
    )
    decisions = decide_per_category(to_school, case, SubjectSay(), CATALOGUE, TODAY)
    assert decided(decisions) == [
        (True, "allowed", ("professional_conclusion",)),
        (False, "category_not_agreed", ("safety_concerns",)),
    ]
    assert decisions[1].reason_details == {"agency": "school-het-baken", "category": "safety_concerns"}


def test_each_refused_category_keeps_its_own_reason(family):
    case, people = family
    from_ggd = request(
        case,
        people["daughter"],
        from_agency="ggd-regio-utrecht",
        categories=("health", "safety_concerns", "religion"),
        special_grounds={"religion": "child_protection"},
    )
    decisions = decide_per_category(from_ggd, case, SubjectSay(), CATALOGUE, TODAY)
    assert [(d.categories, d.reason_code, d.reason_details.get("category")) for d in decisions] == [
        (("health",), "special_category_without_ground", "health"),
        (("safety_concerns",), "category_not_brought", "safety_concerns"),
        (("religion",), "category_not_brought", "religion"),
    ]


def test_a_rule_about_the_whole_request_refuses_every_category_in_one_decision(family):
    case, people = family
    for changes, say, code in (
        ({"purpose": "debt_assistance"}, SubjectSay(), "purpose_mismatch"),
        ({}, SubjectSay(objection_id="o-1"), "objection_lodged"),
    ):
        both = request(case, people["daughter"], categories=("safety_concerns", "identity"), **changes)
        assert decided(decide_per_category(both, case, say, CATALOGUE, TODAY)) == [
            (False, code, ("safety_concerns", "identity"))
        ]


def test_an_override_lets_through_only_the_categories_in_its_scope(family):
    case, people = family
    in_force = override([people["daughter"]], categories=("safety_concerns",))
    say = SubjectSay(objection_id="o-1", overrides=(in_force,))
    both = request(case, people["daughter"], categories=("safety_concerns", "identity"))
    decisions = decide_per_category(both, case, say, CATALOGUE, TODAY)
    assert decided(decisions) == [
        (True, "allowed", ("safety_concerns",)),
        (False, "objection_lodged", ("identity",)),
    ]
    assert decisions[0].override_id == in_force.override_id


def test_content_about_two_people_goes_only_where_it_may_go_for_each_of_them(family):
    case, people = family
    mother, daughter = people["mother"], people["daughter"]
    # the mother objected; an override covers her for safety concerns, not for identity
    her_say = SubjectSay(objection_id="o-1", overrides=(override([mother]),))
    both = request(case, daughter, categories=("safety_concerns", "identity"), also_about=(mother,))
    decisions = decide_per_category(both, case, SubjectSay(), CATALOGUE, TODAY, also_about={mother: her_say})
    assert [(d.allowed, d.reason_code, d.categories, d.subject) for d in decisions] == [
        (True, "allowed", ("safety_concerns",), None),
        (False, "objection_lodged", ("identity",), mother),
    ]
    assert decisions[0].override_id is not None
