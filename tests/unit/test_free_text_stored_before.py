"""Events stored before the contact point's function and an override's ``recorded_by.function``
were sealed (issue 12) still load, replay and publish as they did; the services that receive
them seal the plain text at once, so no read model keeps it and a purge makes it unreadable.

``data/events_before_free_text_sealed.json`` was written by the code before that change: a
family case registered (contact point ``casusregisseur jeugd``) and activated, an objection, a
safety override recorded by an ``aandachtsfunctionaris``, and a share under it; each event with
its stored topic and state and the body that code published on ``keten.events``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from services.case_registration.domain import Case
from services.gateway.pages import overview_page
from shared.contracts.envelope import encode_event
from shared.sealed import Sealed
from tests.wired import WiredPlatform

BEFORE = json.loads(
    (Path(__file__).parent / "data" / "events_before_free_text_sealed.json").read_text(encoding="utf-8")
)
CASE_ID = uuid.UUID(BEFORE["case_id"])
CONTACT_FUNCTION = BEFORE["contact_point"]["function"]  # "casusregisseur jeugd"
OVERRIDE_FUNCTION = BEFORE["override_function"]  # "aandachtsfunctionaris"


def store_before(app: Any, source: str) -> None:
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=uuid.UUID(event["originator_id"]),
                originator_version=event["originator_version"],
                topic=event["topic"],
                state=event["state"].encode(),
            )
            for event in BEFORE[source]
        ]
    )


#: The services whose own store holds events the previous code stored, in plain text: events
#: are never edited (docs/architecture.md, "Sealed free text").
STORED_BEFORE_IN = ("case_registration", "consent", "data_sharing")


def kept(app: Any) -> str:
    """Every row the application keeps, as text: its read models and the events it stored, but
    not events the previous code stored (``STORED_BEFORE_IN``)."""
    with app.sql.transaction(commit=False) as cur:
        names = [
            row[0] for row in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        ]
        if app.name in STORED_BEFORE_IN:
            names.remove("stored_events")
        return "\n".join(
            repr(tuple(row)) for name in names for row in cur.execute(f'SELECT * FROM "{name}"').fetchall()
        )


@pytest.fixture
def platform(memory_settings):
    """The services with the events the previous code stored in case_registration's, consent's
    and data_sharing's stores, published to the others as the relay publishes them now."""
    platform = WiredPlatform(memory_settings)
    for source in ("case_registration", "consent", "data_sharing"):
        store_before(platform.apps[source], source)
    platform.sync()
    return platform


def overview_case(platform: WiredPlatform) -> dict[str, Any]:
    """The case in the overview of the subject of the share (a child, under the override)."""
    subject = json.loads(BEFORE["data_sharing"][0]["published"])["data"]["subject"]
    [case] = platform.services["notification"].get_overview(subject, "nl")["cases"]
    return case  # type: ignore[no-any-return]


def test_a_case_stored_before_loads_and_is_published_as_it_was(platform):
    registration = platform.apps["case_registration"]
    case = registration.repository.get(CASE_ID)
    assert isinstance(case, Case) and case.status == "active"
    assert (case.contact_point.agency, case.contact_point.function) == ("gemeente-utrecht", CONTACT_FUNCTION)
    assert published(registration) == [e["published"] for e in BEFORE["case_registration"]]


def published(app: Any) -> list[str | None]:
    """What the relay publishes of each event in the application's store."""
    messages = (
        encode_event(app.mapper.to_domain_event(n), app.name, n.id)
        for n in app.recorder.select_notifications(start=1, limit=100)
    )
    return [message.body.decode() if message else None for message in messages]


def test_an_override_and_a_share_stored_before_load_and_are_published_as_they_were(platform):
    for source in ("consent", "data_sharing"):
        assert published(platform.apps[source]) == [e["published"] for e in BEFORE[source]]
    [override] = [e for e in BEFORE["consent"] if e["topic"].endswith("SafetyOverrideRecorded")]
    recorded = platform.apps["consent"].repository.get(uuid.UUID(override["originator_id"]))
    assert recorded.recorded_by.function == OVERRIDE_FUNCTION
    [share] = BEFORE["data_sharing"]
    shared = platform.apps["data_sharing"].repository.get(uuid.UUID(share["originator_id"]))
    assert shared.to_agency == "raad-kinderbescherming"


def test_every_service_that_takes_what_was_stored_before_keeps_it_sealed(platform):
    for name in ("consent", "data_sharing", "notification", "retention"):
        rows = kept(platform.apps[name])
        assert str(CASE_ID) in rows, f"{name} took the case"
        for words in (CONTACT_FUNCTION, OVERRIDE_FUNCTION):
            assert words not in rows, f"{name} keeps {words!r} in plain text"
    sharing = platform.apps["data_sharing"]
    facts = sharing.cases.get(CASE_ID)
    assert isinstance(facts.contact_point.function, Sealed)
    assert sharing.vault.open(facts.contact_point.function) == CONTACT_FUNCTION

    # Sealed, they read for the citizen as they did.
    case = overview_case(platform)
    assert case["contact_point"]["function"] == CONTACT_FUNCTION
    assert case["shares"][0]["contact_point"]["function"] == CONTACT_FUNCTION
    assert case["overrides"][0]["recorded_by"] == {
        "agency": "veilig-thuis-utrecht",
        "function": OVERRIDE_FUNCTION,
    }
    page = overview_page({"cases": [case]}, "nl", csrf_token="t")
    assert f"Gemeente Utrecht, {CONTACT_FUNCTION}." in page and f"Besluit van: {OVERRIDE_FUNCTION}." in page


def keep_plain_functions_as_before(platform: WiredPlatform) -> None:
    """Puts the overview's rows in the shape the previous code wrote: functions in plain text."""
    notification = platform.apps["notification"]
    overview = notification.overview
    with notification.sql.transaction() as cur:
        for table in (overview.cases_table, overview.entries_table):
            for key, document in cur.execute(f"SELECT rowid, document FROM {table}").fetchall():
                kept = json.loads(document)
                for who, function in (
                    ("contact_point", CONTACT_FUNCTION),
                    ("recorded_by", OVERRIDE_FUNCTION),
                ):
                    if isinstance(kept.get(who), dict):
                        kept[who]["function"] = function
                cur.execute(f"UPDATE {table} SET document = ? WHERE rowid = ?", (json.dumps(kept), key))


def test_a_case_stored_before_is_closed_and_purged_and_its_functions_are_gone_from_every_read_model(
    platform,
):
    keep_plain_functions_as_before(platform)
    assert CONTACT_FUNCTION in kept(platform.apps["notification"])
    assert overview_case(platform)["contact_point"]["function"] == CONTACT_FUNCTION
    close = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "case_id": str(CASE_ID),
        "outcome": "help_arranged",
    }
    assert platform.command("case_registration", "close_case", close)["status"] == "closed"

    report = platform.apps["retention"].purge_due(datetime.now(UTC) + timedelta(days=30 * 366))
    platform.sync()

    assert report.by_kind == {"case_records": 1, "share_records": 4}
    for name in ("consent", "data_sharing", "notification", "retention"):
        rows = kept(platform.apps[name])
        for words in (CONTACT_FUNCTION, OVERRIDE_FUNCTION):
            assert words not in rows, f"{name} keeps {words!r} after the purge"
    case = overview_case(platform)
    assert case["contact_point"]["function"] is None
    [share] = case["shares"]
    assert (share["to_agency"], share["contact_point"]["function"]) == ("raad-kinderbescherming", None)
    assert case["overrides"][0]["recorded_by"]["function"] is None
    page = overview_page({"cases": [case]}, "nl", csrf_token="t")
    assert "Gemeente Utrecht." in page and "Besluit van: gewist." in page and "None" not in page
