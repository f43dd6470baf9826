"""A citizen's requests on the law's clock: received with a deadline one calendar month later in
Europe/Amsterdam, extended once with a reason, answered, overdue; an objection and a consent
withdrawal take effect at once through the consent paths."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from keten.demo import CITIZEN
from services.consent.domain import add_months, answer_deadline, consent_record_id
from shared.errors import KetenError
from shared.pseudonym import pseudonymise
from tests.factories import activate_command, case_command, consent_command
from tests.wired import WiredPlatform


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
    ],
)
def test_a_month_is_a_calendar_month(day, months, expected):
    assert add_months(day, months) == expected


def test_the_deadline_counts_from_the_day_of_receipt_in_amsterdam():
    # 22:30 UTC on 31 March is already 1 April in Amsterdam (summer time).
    assert answer_deadline(datetime(2026, 3, 31, 22, 30, tzinfo=UTC)) == date(2026, 5, 1)
    # 22:30 UTC on 31 January is 23:30 in Amsterdam, still 31 January.
    assert answer_deadline(datetime(2026, 1, 31, 22, 30, tzinfo=UTC)) == date(2026, 2, 28)


@pytest.fixture
def platform(memory_settings):
    wired = WiredPlatform(memory_settings)
    command = case_command()
    wired.command("case_registration", "register_case", command)
    wired.command("case_registration", "activate_case", activate_command(command["case_id"]))
    wired.case_id = command["case_id"]
    wired.citizen = pseudonymise(CITIZEN["bsn"], memory_settings.pseudonym_secret)
    return wired


def ask(platform, kind="question", **changes):
    request = {
        "subject": platform.citizen,
        "request_id": str(uuid.uuid4()),
        "case_id": platform.case_id,
        "kind": kind,
        "text": "Waarom kreeg de woningcorporatie mijn schulden te zien?",
    }
    request.update(changes)
    try:
        return platform.services["consent"].submit_citizen_request(request)
    finally:
        platform.sync()


def agency_command(name, platform, **fields):
    command = {"schema_version": 1, "agency": "gemeente-utrecht", **fields}
    try:
        return getattr(platform.services["consent"], name)(command)
    finally:
        platform.sync()


REASON = {
    "nl": "Wij hebben meer tijd nodig om het dossier na te lezen.",
    "en": "We need more time to read the file.",
}


def test_a_question_gets_a_deadline_one_month_on_and_goes_to_the_record_holder(platform):
    status = ask(platform)
    assert status["status"] == "open" and status["agency"] == "gemeente-utrecht"
    received = datetime.fromisoformat(status["received_at"])
    assert status["due_on"] == answer_deadline(received).isoformat()
    listed = agency_command("list_citizen_requests", platform)["requests"]
    assert [r["request_id"] for r in listed] == [status["request_id"]]
    assert listed[0]["text_withheld"] == "no_key"  # this test's agency has no key registered
    mine = platform.services["consent"].citizen_requests(platform.citizen)["requests"]
    assert mine[0]["text"].startswith("Waarom") and [s["step"] for s in mine[0]["steps"]] == ["received"]


def test_the_same_request_id_twice_is_one_request(platform):
    request_id = str(uuid.uuid4())
    first = ask(platform, request_id=request_id)
    before = platform.apps["consent"].recorder.max_notification_id()
    again = ask(platform, request_id=request_id)
    assert again == first
    assert platform.apps["consent"].recorder.max_notification_id() == before


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"case_id": str(uuid.uuid4())}, 404, "unknown_case"),
        ({"text": ""}, 400, "invalid_field"),
        ({"text": "   "}, 400, "invalid_field"),
        ({"text": "x" * 4001}, 400, "invalid_field"),
        ({"text": None}, 400, "text_required"),
        ({"kind": "complaint"}, 400, "invalid_field"),
        ({"agency": "politie-midden-nederland"}, 400, "not_a_participant"),
    ],
)
def test_a_bad_request_is_refused_clearly_and_changes_nothing(platform, changes, status, code):
    before = platform.apps["consent"].recorder.max_notification_id()
    with pytest.raises(KetenError) as refused:
        ask(platform, **changes)
    assert (refused.value.status, refused.value.code) == (status, code)
    assert platform.apps["consent"].recorder.max_notification_id() == before


def test_a_case_the_citizen_is_not_a_subject_of_is_404_as_if_it_did_not_exist(platform, memory_settings):
    someone_else = pseudonymise("111222333", memory_settings.pseudonym_secret)
    with pytest.raises(KetenError) as refused:
        ask(platform, subject=someone_else)
    assert (refused.value.status, refused.value.code) == (404, "unknown_case")


def test_an_objection_stops_the_case_at_once_and_every_agency_at_the_table_hears_it(platform):
    status = ask(platform, kind="objection", text=None)
    assert status["status"] == "answered"
    case = platform.apps["data_sharing"].cases.get(uuid.UUID(platform.case_id))
    assert platform.citizen in case.stopped_for
    app = platform.apps["consent"]
    received = next(iter(app.repository.event_store.get(uuid.UUID(status["request_id"]))))
    addressees = sorted(json.loads(m.body)["agency"] for m in app.inbox_messages(received))
    assert addressees == ["gemeente-utrecht", "kredietbank-utrecht", "woningcorporatie-mitros"]
    mine = app.citizen_requests(platform.citizen).requests[0]
    assert [s.step for s in mine.steps] == ["received", "answered"]
    assert mine.steps[-1].outcome == "granted" and "bezwaar" in mine.steps[-1].reason["nl"]
    [case_shown] = platform.services["notification"].get_overview(platform.citizen, "nl")["cases"]
    due = {r["record_kind"]: r["due_at"] for r in case_shown["retention"]}
    assert case_shown["status"] == "stopped" and due["case_records"] is not None, "its erasure date"


def test_a_consent_withdrawal_takes_effect_at_once(platform):
    platform.command("consent", "give_consent", consent_command(platform.case_id))
    status = ask(platform, kind="consent_withdrawal", text=None)
    assert status["status"] == "answered"
    record = platform.apps["consent"].repository.get(
        consent_record_id(uuid.UUID(platform.case_id), platform.citizen)
    )
    assert record.consents == ()


def test_an_extension_needs_a_reason_and_comes_once(platform):
    status = ask(platform)
    request_id, due = status["request_id"], date.fromisoformat(status["due_on"])
    later = (due + timedelta(days=30)).isoformat()
    with pytest.raises(KetenError) as refused:
        agency_command("extend_citizen_request", platform, request_id=request_id, until=later)
    assert (refused.value.status, refused.value.code) == (400, "extension_reason_required")
    with pytest.raises(KetenError) as too_long:
        agency_command(
            "extend_citizen_request",
            platform,
            request_id=request_id,
            until=(add_months(due, 2) + timedelta(days=1)).isoformat(),
            reason=REASON,
        )
    assert too_long.value.code == "invalid_extension"
    extended = agency_command(
        "extend_citizen_request", platform, request_id=request_id, until=later, reason=REASON
    )
    assert extended["due_on"] == later and extended["extended"] is True
    with pytest.raises(KetenError) as twice:
        agency_command("extend_citizen_request", platform, request_id=request_id, until=later, reason=REASON)
    assert (twice.value.status, twice.value.code) == (409, "extended_already")


def test_only_the_agency_that_must_answer_sees_and_answers_the_request(platform):
    status = ask(platform)
    command = {"request_id": status["request_id"], "outcome": "granted", "reason": REASON}
    with pytest.raises(KetenError) as refused:
        agency_command("answer_citizen_request", platform, **{**command, "agency": "kredietbank-utrecht"})
    assert refused.value.status == 404
    answer = agency_command("answer_citizen_request", platform, **command)
    assert answer["status"] == "answered"
    assert agency_command("list_citizen_requests", platform)["requests"] == []


def test_a_request_answered_in_time_is_never_overdue_and_one_left_unanswered_is(platform):
    answered, left = ask(platform), ask(platform)
    agency_command(
        "answer_citizen_request",
        platform,
        request_id=answered["request_id"],
        outcome="partly_granted",
        reason=REASON,
    )
    app = platform.apps["consent"]
    due = date.fromisoformat(left["due_on"])
    week_before = datetime.combine(due - timedelta(days=3), datetime.min.time(), UTC)
    assert app.escalate_requests(week_before).reminded == 1
    day_after = datetime.combine(due + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=12)
    escalated = app.escalate_requests(day_after)
    assert (escalated.became_overdue, escalated.overdue) == (1, 1)
    assert app.escalate_requests(day_after).became_overdue == 0  # repeat-safe
    statuses = {r.request_id: r.status for r in app.citizen_requests(platform.citizen).requests}
    assert statuses == {
        uuid.UUID(answered["request_id"]): "answered",
        uuid.UUID(left["request_id"]): "overdue",
    }


def test_the_citizens_words_are_sealed_and_go_with_their_records(platform):
    status = ask(platform)
    app = platform.apps["consent"]
    received = next(iter(app.repository.event_store.get(uuid.UUID(status["request_id"]))))
    assert "Waarom" not in repr(vars(received))
    app.vault.shred(uuid.UUID(platform.case_id), platform.citizen)
    mine = app.citizen_requests(platform.citizen).requests[0]
    assert (mine.text, mine.purged, mine.status) == (None, True, "open")


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_page_shows_the_contact_point_the_requests_with_deadlines_and_the_complaint_route(
    platform, language
):
    from services.gateway import pages

    left = ask(platform)
    platform.apps["consent"].escalate_requests(
        datetime.combine(date.fromisoformat(left["due_on"]) + timedelta(days=2), datetime.min.time(), UTC)
    )
    overview = platform.services["notification"].get_overview(platform.citizen, language)
    requests = platform.services["consent"].citizen_requests(platform.citizen)["requests"]
    page = pages.overview_page(overview, language, "token", requests)
    words = pages.labels(language)
    assert "030 000 01 01" in page and "zorgenveiligheid@gemeente-utrecht.example" in page  # contact point
    assert words["request_statuses"]["overdue"] in page and left["due_on"] in page
    assert "De Nationale ombudsman" in page and "Autoriteit Persoonsgegevens" in page
    assert 'name="csrf_token" value="token"' in page and 'action="/inzage/requests?lang=' in page
    assert words["roles"]["debt_counsellor"] in page and ">debt_counsellor<" not in page
    received_at = datetime.fromisoformat(left["received_at"])
    assert pages.local_time(received_at) in page  # Dutch time, not UTC


def test_the_copy_holds_the_requests_the_contact_details_and_roles_in_words(platform):
    from services.gateway import pages

    ask(platform)
    overview = platform.services["notification"].get_overview(platform.citizen, "nl")
    requests = platform.services["consent"].citizen_requests(platform.citizen)["requests"]
    text = (
        pages._environment()
        .get_template("overview.txt.j2")
        .render(
            t=pages.labels("nl"),
            overview=overview,
            language="nl",
            agency_details=pages.agency_details,
            requests_by_case={str(platform.case_id): requests},
        )
    )
    assert "Vraag aan Gemeente Utrecht" in text and requests[0]["due_on"] in text
    assert "030 000 01 01" in text and "schuldhulpverlener" in text and "debt_counsellor" not in text
    assert pages.overview_pdf(overview, "nl", requests).startswith(b"%PDF")


@pytest.fixture
def mailed(memory_settings, mailbox, tmp_path):
    import dataclasses

    settings = dataclasses.replace(
        memory_settings,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        letter_dir=tmp_path / "letters",
        notify_bundle_seconds=0,
    )
    wired = WiredPlatform(settings)
    command = case_command()
    wired.command("case_registration", "register_case", command)
    wired.command("case_registration", "activate_case", activate_command(command["case_id"]))
    wired.case_id = command["case_id"]
    wired.citizen = pseudonymise(CITIZEN["bsn"], settings.pseudonym_secret)
    return wired


def test_the_citizen_is_told_by_email_of_the_answer_and_of_a_request_left_overdue(mailed, mailbox):
    answered, left = ask(mailed), ask(mailed)
    agency_command(
        "answer_citizen_request", mailed, request_id=answered["request_id"], outcome="refused", reason=REASON
    )
    mailed.apps["consent"].escalate_requests(
        datetime.combine(date.fromisoformat(left["due_on"]) + timedelta(days=1), datetime.min.time(), UTC)
        + timedelta(hours=12)
    )
    mailed.sync()
    notification = mailed.apps["notification"]
    assert notification.dispatch_due(datetime.now(UTC) + timedelta(seconds=2)) == 2
    mails = {mail["Subject"]: mail for mail in mailbox.messages}
    answer = mails["Antwoord op uw verzoek (Gemeente Utrecht)"]
    body = answer.get_content()
    assert answer["Date"] and answer["To"] == CITIZEN["email"]
    assert "afgewezen" in body and REASON["nl"] in body and answered["request_id"] in body
    assert "Kenmerk: " in body and "030 000 01 01" in body
    overdue = mails["Uw verzoek is niet op tijd beantwoord (Gemeente Utrecht)"].get_content()
    assert left["due_on"] in overdue and "klagen" in overdue
    assert "De Nationale ombudsman" in overdue and "Autoriteit Persoonsgegevens" in overdue
    assert notification.dispatch_due(datetime.now(UTC) + timedelta(seconds=4)) == 0  # once each


def test_the_request_index_is_rebuilt_from_the_events_alone(platform):
    from services.consent import request_index

    consent = platform.apps["consent"]
    answered, left = ask(platform), ask(platform)
    agency_command(
        "answer_citizen_request",
        platform,
        request_id=answered["request_id"],
        outcome="granted",
        reason=REASON,
    )
    consent.escalate_requests(datetime.now(UTC) + timedelta(days=25))  # the other one: reminded
    before = request_index.of_subject(consent.sql, platform.citizen)
    with consent.sql.transaction() as cur:
        cur.execute(f"DELETE FROM {request_index.TABLE}")
    assert consent.citizen_requests(platform.citizen).requests == ()
    assert consent.rebuild_request_index() == 2
    assert request_index.of_subject(consent.sql, platform.citizen) == before
    assert [r.status for r in before] and {r.request_id for r in before} == {
        uuid.UUID(answered["request_id"]),
        uuid.UUID(left["request_id"]),
    }
    assert next(r for r in before if str(r.request_id) == left["request_id"]).reminded_for is not None


def test_an_index_made_before_its_new_columns_gets_them_and_its_rows_from_the_events(tmp_path):
    from services.consent import request_index
    from services.consent.application import ConsentUseCases
    from shared.config import Settings

    settings = Settings.from_env({"KETEN_VAR_DIR": str(tmp_path)})  # SQLite files: a store that stays
    wired = WiredPlatform(settings)
    command = case_command()
    wired.command("case_registration", "register_case", command)
    wired.command("case_registration", "activate_case", activate_command(command["case_id"]))
    wired.sync()
    wired.case_id, wired.citizen = command["case_id"], pseudonymise(CITIZEN["bsn"], settings.pseudonym_secret)
    asked = ask(wired)
    with wired.apps["consent"].sql.transaction() as cur:  # the table as it was made before
        for column in request_index.ADDED_COLUMNS:
            cur.execute(f"ALTER TABLE {request_index.TABLE} DROP COLUMN {column}")
    for app in wired.apps.values():
        app.close()

    consent = ConsentUseCases(settings)  # what the service does when it starts
    try:
        [row] = request_index.open_for(consent.sql, "gemeente-utrecht")
        assert (str(row.request_id), row.kind, row.extended) == (asked["request_id"], "question", False)
        assert request_index.missing_columns(consent.sql) == []
    finally:
        consent.close()
