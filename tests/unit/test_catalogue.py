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
