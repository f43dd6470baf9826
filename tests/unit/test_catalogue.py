from datetime import UTC, datetime

import pytest
import yaml

from shared.catalogue import DEFAULT_PATH, CatalogueError, Period, load_catalogue, parse


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
