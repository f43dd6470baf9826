from datetime import UTC, datetime

import pytest
import yaml

from shared.catalogue import DEFAULT_PATH, CatalogueError, Period, load_catalogue, parse
from tests.support import keten


def test_the_shipped_catalogue_loads_with_a_version():
    catalogue = load_catalogue()
    assert catalogue.version
    assert catalogue.categories["health"].needs_own_ground
    assert catalogue.categories["bsn"].needs_own_ground
    assert not catalogue.categories["debts"].needs_own_ground
    assert catalogue.categories["professional_conclusion"].kind == "conclusion"


def test_a_reference_to_something_unknown_fails_at_load():
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["tables"][0]["participants"]["gemeente-utrecht"]["bring"].append("shoe_size")
    with pytest.raises(CatalogueError, match="unknown category shoe_size"):
        parse(data)


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("P6W", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 12, tzinfo=UTC)),
        ("P1Y", datetime(2024, 2, 29, tzinfo=UTC), datetime(2025, 2, 28, tzinfo=UTC)),
        ("P2M", datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC)),
    ],
)
def test_retention_periods_count_calendar_time(period, start, end):
    assert Period.parse(period).after(start) == end


def test_a_malformed_period_is_refused():
    with pytest.raises(CatalogueError):
        Period.parse("six weeks")


def test_a_new_retention_version_applies_to_records_whose_period_starts_on_or_after_its_date():
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    short = data["retention_classes"][0]
    short["versions"].append(
        {
            "version": 2,
            "in_force_from": "2027-03-01",
            "rules": {**short["versions"][0]["rules"], "case_records": {"keep": "P4W", "from": "case_ended"}},
        }
    )
    retention_class = parse(data).retention_classes[short["code"]]
    before = retention_class.version_at(datetime(2027, 2, 28, 23, 0, tzinfo=UTC))
    after = retention_class.version_at(datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    assert (before.version, after.version) == (1, 2)
    assert after.rules["case_records"].due(datetime(2027, 3, 1, tzinfo=UTC)) == datetime(
        2027, 3, 29, tzinfo=UTC
    )
    assert retention_class.rules == after.rules
    assert before.rules["outcome"].due(datetime(2027, 3, 1, tzinfo=UTC)) is None


def test_a_retention_class_must_rule_on_every_record_kind():
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    del data["retention_classes"][0]["versions"][0]["rules"]["outcome"]
    with pytest.raises(CatalogueError, match="no rule for outcome"):
        parse(data)


def test_every_legal_hold_reason_and_erasure_refusal_speaks_to_the_citizen_in_dutch_and_english():
    catalogue = load_catalogue()
    assert set(catalogue.erasure_refusals) == {"case_open", "legal_hold"}
    assert "complaint" in catalogue.legal_hold_reasons
    for reason in (*catalogue.erasure_refusals.values(), *catalogue.legal_hold_reasons.values()):
        assert reason.label("nl") and reason.label("en") and reason.label("nl") != reason.label("en")


def shipped() -> dict:
    return yaml.safe_load(DEFAULT_PATH.read_text())


def agency(data: dict, agency_id: str) -> dict:
    return next(a for a in data["agencies"] if a["id"] == agency_id)


def test_every_ground_of_every_agency_names_the_law_and_article_it_rests_on():
    catalogue = load_catalogue()
    for found in catalogue.agencies.values():
        for use in (*found.grounds, *found.special):
            assert use.provision.law and use.provision.article, (found.id, use.ground)
    provision = catalogue.provision("woningcorporatie-mitros", "debt_early_warning", "legal_obligation")
    assert provision is not None
    assert provision.citation == "Besluit gemeentelijke schuldhulpverlening, art. 2 (huurachterstand)"
    assert catalogue.provision("gemeente-utrecht", "debt_assistance", "consent") is None
    special = catalogue.provision("raad-kinderbescherming", "youth_protection", "child_protection")
    assert special is not None and special.citation == "Burgerlijk Wetboek, art. 1:240"


def test_the_consultations_of_the_report_are_tables_with_their_agencies():
    catalogue = load_catalogue()
    purposes = {purpose for table in catalogue.tables.values() for purpose in table.purposes}
    assert {
        "domestic_violence",
        "nuisance_and_eviction",
        "youth_protection",
        "debt_early_warning",
        "care_coordination",
        "confused_persons",
        "aftercare_detainees",
        "complex_care_and_safety",
    } <= purposes
    types = {found.type for found in catalogue.agencies.values()}
    assert {
        "police",
        "public_prosecutor",
        "probation",
        "child_protection_board",
        "domestic_violence_service",
        "health_service",
        "mental_health_care",
        "general_practitioner",
        "home_care",
        "housing_association",
        "school",
        "municipality",
        "benefits_agency",
        "allowances_agency",
    } <= types


def test_no_table_lets_anyone_receive_a_medical_file_only_the_advice():
    catalogue = load_catalogue()
    assert (
        catalogue.categories["medical_advice"].kind == catalogue.categories["medical_file"].kind == "special"
    )
    receivers = {
        agency_id
        for table in catalogue.tables.values()
        for agency_id, line in table.participants.items()
        if "medical_advice" in line.receive
    }
    assert receivers
    assert not any(
        "medical_file" in line.receive
        for table in catalogue.tables.values()
        for line in table.participants.values()
    )


def test_every_agency_has_contact_details_and_a_complaint_route_ending_at_the_privacy_authority():
    catalogue = load_catalogue()
    for found in catalogue.agencies.values():
        contact = found.contact
        assert contact.phone and contact.email and contact.postal_address and contact.opening_hours
        assert found.complaints.procedure("nl") and found.complaints.procedure("en")
        assert found.complaints.desk.email
        assert found.complaints.privacy.code == "autoriteit_persoonsgegevens"
    ap = catalogue.complaint_bodies["autoriteit_persoonsgegevens"].contact
    assert ap is not None and ap.postal_address == "Postbus 93374\n2509 AJ Den Haag"
    municipality = catalogue.agencies["gemeente-utrecht"].complaints
    assert [body.code for body in municipality.escalation] == ["nationale_ombudsman"]
    assert municipality.desk.email != catalogue.agencies["gemeente-utrecht"].contact.email
    assert catalogue.agencies["woningcorporatie-mitros"].complaints.escalation == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: agency(d, "gemeente-utrecht")["purposes"]["debt_assistance"][0].pop("provision"),
            "agency gemeente-utrecht, purpose debt_assistance, ground statutory_task: names no provision",
        ),
        (
            lambda d: agency(d, "uwv")["purposes"]["care_coordination"][0]["provision"].pop("article"),
            "agency uwv, purpose care_coordination, ground legal_obligation, provision: needs article",
        ),
        (
            lambda d: agency(d, "raad-kinderbescherming")["special_grounds"][0].pop("provision"),
            "agency raad-kinderbescherming, special ground child_protection: names no provision",
        ),
        (
            lambda d: agency(d, "huisarts-de-linde")["purposes"].update({"care_coordination": ["consent"]}),
            "agency huisarts-de-linde, purpose care_coordination: each ground needs ground and provision",
        ),
        (
            lambda d: d["tables"][0]["participants"].update(
                {"gemeente-amsterdam": {"role": "x", "bring": [], "receive": []}}
            ),
            "table vroegsignalering-schulden: unknown agency gemeente-amsterdam",
        ),
        (
            lambda d: d["purposes"].append(
                {"code": "street_cleaning", "label": {"nl": "vegen", "en": "sweeping"}}
            ),
            "purpose street_cleaning: no agency has a ground for it",
        ),
        (
            lambda d: d["categories"].append(dict(d["categories"][0])),
            "categories: code identity appears twice",
        ),
        (
            lambda d: d["agencies"].append(dict(d["agencies"][0])),
            "agencies: id gemeente-utrecht appears twice",
        ),
        (
            lambda d: agency(d, "school-het-baken").pop("contact"),
            "agency school-het-baken: needs contact details",
        ),
        (
            lambda d: agency(d, "uwv")["complaints"].update({"then": ["kinderombudsman"]}),
            "agency uwv, complaints: unknown complaint body kinderombudsman",
        ),
        (
            lambda d: d.update({"version": "2099.1.1"}),
            "version 2099.1.1: needs an entry in changes",
        ),
    ],
    ids=[
        "ground-without-provision",
        "provision-without-article",
        "special-ground-without-provision",
        "old-style-ground",
        "table-with-unknown-agency",
        "purpose-without-ground",
        "duplicate-category",
        "duplicate-agency",
        "agency-without-contact",
        "unknown-complaint-body",
        "version-without-change",
    ],
)
def test_a_catalogue_with_a_gap_is_refused_naming_the_entry(change, message):
    data = shipped()
    change(data)
    with pytest.raises(CatalogueError) as error:
        parse(data)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_keten_refuses_to_start_on_a_catalogue_with_a_gap_in_one_line(tmp_path):
    data = shipped()
    agency(data, "politie-midden-nederland")["purposes"]["domestic_violence"][0].pop("provision")
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))

    result = keten("run", env={"KETEN_CATALOGUE": str(path), "KETEN_VAR_DIR": str(tmp_path)}, timeout=60)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"configuration error: catalogue {path}: agency politie-midden-nederland, purpose "
        "domestic_violence, ground legal_obligation: names no provision (the law and article the "
        "ground rests on)"
    ]
