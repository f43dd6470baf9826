"""Retention on in-memory stores: the schedule, the purge, legal holds and erasure requests.

The applications are wired by hand the way the topology wires the services: each gets the
events of the others it subscribes to, once, in order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from keten.demo import CITIZEN
from services.case_registration.application import CaseRegistrationUseCases
from services.consent.application import ConsentUseCases
from services.data_sharing.application import DataSharingUseCases
from services.notification.application import NotificationUseCases
from services.retention.application import ErasureDecision, LegalHoldStatus, RetentionUseCases
from services.retention.purge_plan import PurgeOutcome, PurgeReport
from services.retention.schedule import ScheduleEntry
from shared.contracts.commands import (
    ActivateCase,
    CloseCase,
    ErasureRequestSchema,
    GiveConsentSchema,
    LiftLegalHold,
    PlaceLegalHoldSchema,
    RegisterCaseSchema,
    RequestShareSchema,
    load_command,
)
from shared.errors import Conflict, NotAuthorised
from shared.pseudonym import pseudonymise
from shared.sealed import PURGED, KeyScope
from tests.factories import case_command, consent_command, loaded, received, share_command

SENTENCE = "Zij heeft de huur van april tot en met juni niet kunnen betalen."


class Platform:
    """The five applications on in-memory stores, and a bus that hands events over."""

    def __init__(self, settings):
        self.settings = settings
        self.registration = CaseRegistrationUseCases(settings)
        self.consent = ConsentUseCases(settings)
        self.sharing = DataSharingUseCases(settings)
        self.notification = NotificationUseCases(settings)
        self.retention = RetentionUseCases(settings)
        self.vault = self.retention.vault
        self.subject = pseudonymise(CITIZEN["bsn"], settings.pseudonym_secret)
        n, s, c, r = self.notification, self.sharing, self.consent, self.retention
        self.routes = {
            c: {"CaseRegistered": c.cases.apply, "CaseClosed": c.cases.apply, "RecordsPurged": c.cases.apply},
            s: {
                "CaseRegistered": s.cases.apply,
                "CaseActivated": s.cases.apply,
                "CaseClosed": s.cases.apply,
                "ConsentGiven": s.record_consent_given,
                "RecordsPurged": s.record_records_purged,
            },
            n: {
                "CaseRegistered": n.learn,
                "CaseClosed": n.learn,
                "ConsentGiven": n.learn,
                "DataShared": n.notify_share,
                "ShareRefused": n.learn,
                "RecordsPurged": n.learn,
                "ErasureGranted": n.learn,
                "ErasureRefused": n.learn,
            },
            r: {
                "CaseRegistered": r.record_case_registered,
                "CaseClosed": r.record_case_closed,
                "DataShared": r.record_data_shared,
            },
            self.registration: {"RecordsPurged": self.registration.record_records_purged},
        }

    def sync(self) -> None:
        for source in (self.registration, self.consent, self.sharing, self.retention):
            for event in received(source):
                for consumer, handlers in self.routes.items():
                    handler = handlers.get(event.name)
                    if handler and consumer.position(event.source) < event.position:
                        handler(event)

    def register(self, **changes) -> UUID:
        command = case_command(**changes)
        case = self.registration.register_case(loaded(RegisterCaseSchema, command, self.settings))
        self.registration.activate_case(ActivateCase(agency=command["agency"], case_id=case.case_id))
        self.sync()
        return case.case_id

    def share(self, case_id: UUID, content: str = SENTENCE, **changes) -> UUID:
        command = share_command(str(case_id), content=content, **changes)
        [decision] = self.sharing.request_share(loaded(RequestShareSchema, command, self.settings)).decisions
        self.sync()
        return decision.share_id

    def give_consent(self, case_id: UUID) -> None:
        self.consent.give_consent(loaded(GiveConsentSchema, consent_command(str(case_id)), self.settings))
        self.sync()

    def close(self, case_id: UUID) -> None:
        self.registration.close_case(
            CloseCase(agency="gemeente-utrecht", case_id=case_id, outcome="help_arranged")
        )
        self.sync()

    def purge(self, after: timedelta) -> None:
        self.retention.purge_due(datetime.now(UTC) + after)
        self.sync()

    def hold(self, case_id: UUID, **changes) -> UUID:
        command = {
            "schema_version": 1,
            "agency": "gemeente-utrecht",
            "case_id": str(case_id),
            "reason_code": "complaint",
            "reference": "KL-2026/0042",
            **changes,
        }
        return self.retention.place_legal_hold(load_command(PlaceLegalHoldSchema, command)).hold_id

    def erase(self, case_id: UUID, language: str = "nl") -> ErasureDecision:
        request = {"subject": self.subject, "case_id": str(case_id), "language": language}
        result = self.retention.request_erasure(load_command(ErasureRequestSchema, request))
        self.sync()
        return result

    def published(self, name: str) -> list:
        return [e for e in received(self.retention) if e.name == name]

    def schedule(self, case_id: UUID) -> dict[str, ScheduleEntry]:
        return {r.record_kind: r for r in self.retention.schedule_for(case_id)}


@pytest.fixture
def platform(memory_settings):
    return Platform(memory_settings)


@pytest.fixture
def closed_case(platform):
    """A case with consent and one share, closed: minutes due in 6 weeks, the share in 2 years."""
    case_id = platform.register()
    platform.give_consent(case_id)
    share_id = platform.share(case_id)
    platform.close(case_id)
    return case_id, share_id


WEEKS_7 = timedelta(weeks=7)
YEARS_3 = timedelta(days=3 * 366)


def test_the_schedule_records_each_records_rule_its_version_and_when_it_is_due(platform, closed_case):
    case_id, share_id = closed_case
    schedule = platform.schedule(case_id)
    case_records, share_records, outcome = (
        schedule["case_records"],
        schedule["share_records"],
        schedule["outcome"],
    )
    assert case_records.rule == "consultation-short/case_records v1"
    assert case_records.counted_from is not None
    assert case_records.due_at == case_records.counted_from + timedelta(weeks=6)
    assert share_records.record_id == str(share_id)
    assert share_records.rule == "consultation-short/share_records v1"
    assert share_records.counted_from is not None and share_records.due_at is not None
    assert share_records.due_at.year == share_records.counted_from.year + 2
    assert (outcome.status, outcome.due_at) == ("kept", None)
    assert platform.subject not in repr(schedule), "the schedule an agency reads names no person"


def test_a_running_case_has_nothing_due_however_late_it_gets(platform):
    case_id = platform.register()
    platform.share(case_id)
    assert platform.retention.plan_purge(datetime.now(UTC) + YEARS_3) == []
    assert platform.schedule(case_id)["case_records"].status == "open"


def test_the_minutes_go_weeks_after_closing_while_the_share_records_wait_their_years(platform, closed_case):
    case_id, _ = closed_case
    case = platform.registration.repository.get(case_id)

    platform.purge(WEEKS_7)

    assert platform.vault.open(case.description) is PURGED
    [subject] = case.subjects
    assert platform.vault.open(subject.details)["name"] == CITIZEN["name"]
    [purged] = platform.published("RecordsPurged")
    assert purged.data.record_kind == "case_records"
    assert purged.data.scope == "case" and not purged.data.complete
    assert purged.data.rule_version == 1 and purged.data.retention_class == "consultation-short"
    assert platform.schedule(case_id)["case_records"].status == "purged"
    assert platform.schedule(case_id)["share_records"].status == "scheduled"


def test_once_everything_is_due_no_key_of_the_case_is_left_and_every_value_reads_purged(
    platform, closed_case
):
    case_id, share_id = closed_case
    other = platform.register()
    platform.share(other, content="Een andere casus, een andere zin.")

    platform.purge(YEARS_3)

    assert platform.vault.keys.live_keys(case_id) == []
    # The events still replay: the aggregates load, their personal fields read as purged.
    case = platform.registration.repository.get(case_id)
    assert case.status == "closed" and case.outcome == "help_arranged"
    assert platform.vault.open(case.description) is PURGED
    assert platform.vault.open(case.subjects[0].details) is PURGED
    share = platform.sharing.repository.get(share_id)
    assert (share.to_agency, share.categories) == ("kredietbank-utrecht", ("debts",))
    assert platform.vault.open(share.content) is PURGED
    # Another case is untouched.
    assert platform.vault.keys.live_keys(other) != []
    other_case = platform.registration.repository.get(other)
    assert platform.vault.open(other_case.subjects[0].details)["name"] == CITIZEN["name"]
    kinds = [(e.data.record_kind, e.data.complete) for e in platform.published("RecordsPurged")]
    assert kinds == [("case_records", False), ("share_records", True)]


def test_every_service_forgets_the_purged_case_and_the_overview_still_tells_what_was_shared(
    platform, closed_case
):
    case_id, share_id = closed_case
    platform.purge(YEARS_3)

    for app in (platform.consent, platform.sharing, platform.notification, platform.retention):
        assert app.cases.get(case_id) is None, app.name
    with platform.sharing.sql.transaction(commit=False) as cur:
        assert cur.execute(f"SELECT * FROM {platform.sharing.consent_table}").fetchall() == []
    overview = platform.notification.overview_for(platform.subject, "en").to_json()
    [case] = overview["cases"]
    assert [p["record_kind"] for p in case["purged"]] == ["case_records", "share_records"]
    assert case["purged"][0]["label"] == "minutes and notes of the consultation"
    [share] = case["shares"]
    assert (share["share_id"], share["from_name"], share["to_name"]) == (
        str(share_id),
        "Gemeente Utrecht",
        "Kredietbank Utrecht",
    )
    assert share["sender_ground"] == "statutory_task"
    assert share["content"] is None and share["purged_at"] and share["purge_reason"] == "retention"
    with platform.notification.sql.transaction(commit=False) as cur:
        rows = cur.execute(f"SELECT document FROM {platform.notification.overview.entries_table}").fetchall()
    assert all("ciphertext" not in row[0] and '"c":' not in row[0] for row in rows)


def test_a_redelivered_purge_changes_nothing(platform, closed_case):
    platform.purge(YEARS_3)
    before = platform.notification.overview_for(platform.subject).to_json()
    [first, *_] = platform.published("RecordsPurged")
    with pytest.raises(IntegrityError):
        platform.notification.learn(first)
    assert platform.notification.overview_for(platform.subject).to_json() == before


class FailingVault:
    """The real vault, except that destroying a key fails from the ``fail_from``-th time on:
    the database went away in the middle of a purge run."""

    def __init__(self, vault, fail_from: int):
        self.vault, self.fail_from, self.calls = vault, fail_from, 0

    def shred_scope(self, scope):
        self.calls += 1
        if self.calls >= self.fail_from:
            raise OperationalError("connection lost")
        return self.vault.shred_scope(scope)

    def __getattr__(self, name):
        return getattr(self.vault, name)


def test_a_purge_interrupted_halfway_finishes_on_the_next_run_without_harm(platform):
    cases = []
    for _ in range(2):
        case_id = platform.register()
        platform.share(case_id)
        platform.close(case_id)
        cases.append(case_id)
    real = platform.retention.vault
    platform.retention.vault = FailingVault(real, fail_from=3)
    with pytest.raises(OperationalError):
        platform.purge(YEARS_3)
    assert len(platform.published("RecordsPurged")) == 2  # the first case, both of its scopes

    platform.retention.vault = real
    platform.purge(YEARS_3)
    platform.purge(YEARS_3)  # and once more: nothing left to do

    purged = platform.published("RecordsPurged")
    assert sorted((e.data.case_id, e.data.record_kind) for e in purged) == sorted(
        (case_id, kind) for case_id in cases for kind in ("case_records", "share_records")
    )
    assert all(real.keys.live_keys(case_id) == [] for case_id in cases)


def test_keys_destroyed_by_a_run_that_died_before_recording_it_are_recorded_by_the_next(
    platform, closed_case
):
    case_id, _ = closed_case
    platform.vault.shred_scope(KeyScope(case_id))  # the run got this far, then died

    platform.purge(WEEKS_7)

    [purged] = platform.published("RecordsPurged")
    assert (purged.data.case_id, purged.data.record_kind) == (case_id, "case_records")


def test_a_legal_hold_suspends_the_purge_on_record_until_it_is_lifted(platform, closed_case):
    case_id, _ = closed_case
    hold_id = platform.hold(case_id)

    platform.purge(YEARS_3)
    platform.purge(YEARS_3)

    assert platform.published("RecordsPurged") == []
    assert len(platform.vault.keys.live_keys(case_id)) == 2
    suspended = platform.published("PurgeSuspended")
    assert [e.data.record_kind for e in suspended] == ["case_records", "share_records"]
    assert suspended[0].data.reason_codes == ("complaint",)
    assert platform.schedule(case_id)["case_records"].status == "on_hold"
    [placed] = platform.published("LegalHoldPlaced")
    assert (placed.data.reason_code, placed.data.reference) == ("complaint", "KL-2026/0042")

    platform.retention.lift_legal_hold(
        LiftLegalHold(agency="gemeente-utrecht", case_id=case_id, hold_id=hold_id)
    )
    platform.purge(YEARS_3)

    assert platform.vault.keys.live_keys(case_id) == []
    assert len(platform.published("RecordsPurged")) == 2


def test_a_legal_hold_is_answered_in_force_repeat_safe_by_its_id_and_lifted(platform, closed_case):
    case_id, _ = closed_case
    hold_id = uuid4()
    command = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "case_id": str(case_id),
        "hold_id": str(hold_id),
        "reason_code": "complaint",
    }
    placed = platform.retention.place_legal_hold(load_command(PlaceLegalHoldSchema, command))
    again = platform.retention.place_legal_hold(load_command(PlaceLegalHoldSchema, command))

    assert placed == again == LegalHoldStatus(case_id, hold_id, "in_force")
    assert len(platform.published("LegalHoldPlaced")) == 1
    lifted = platform.retention.lift_legal_hold(
        LiftLegalHold(agency="gemeente-utrecht", case_id=case_id, hold_id=hold_id)
    )
    assert lifted == LegalHoldStatus(case_id, hold_id, "lifted")


def test_a_purge_run_reports_what_it_held_what_it_purged_and_what_was_purged_already(platform, closed_case):
    case_id, _ = closed_case
    hold_id = platform.hold(case_id)
    plan = platform.retention.plan_purge(datetime.now(UTC) + YEARS_3)

    held = platform.retention.purge_due(datetime.now(UTC) + YEARS_3)
    platform.retention.lift_legal_hold(
        LiftLegalHold(agency="gemeente-utrecht", case_id=case_id, hold_id=hold_id)
    )
    purged = platform.retention.purge_due(datetime.now(UTC) + YEARS_3)

    assert held == PurgeReport(held=2)
    assert purged == PurgeReport(purged=2, by_kind={"case_records": 1, "share_records": 1})
    assert [platform.retention.purge(planned.unit).outcome for planned in plan] == [PurgeOutcome.ALREADY] * 2
    assert len(platform.published("RecordsPurged")) == 2


def test_a_purge_once_started_cannot_be_overtaken_by_a_legal_hold_and_finishes_next_run(
    platform, closed_case
):
    case_id, _ = closed_case
    real = platform.retention.vault
    platform.retention.vault = FailingVault(real, fail_from=1)
    with pytest.raises(OperationalError):
        platform.purge(WEEKS_7)  # on record as started, then the database went away
    platform.retention.vault = real

    with pytest.raises(Conflict, match="purge_under_way"):
        platform.hold(case_id)
    platform.purge(WEEKS_7)

    [purged] = platform.published("RecordsPurged")
    assert purged.data.record_kind == "case_records"
    assert platform.hold(case_id)  # the share records may still be held


def test_only_an_agency_at_the_table_may_place_a_legal_hold_and_only_for_a_known_reason(
    platform, closed_case
):
    case_id, _ = closed_case
    with pytest.raises(NotAuthorised):
        platform.hold(case_id, agency="uwv")
    with pytest.raises(Exception, match="unknown_reason"):
        platform.hold(case_id, reason_code="bored")
    for name in ("Sanne de Vries", "Jansen"):
        with pytest.raises(Exception, match="an identifier"):
            platform.hold(case_id, reference=name)
    assert platform.published("LegalHoldPlaced") == []


def test_only_an_agency_at_the_table_reads_the_schedule_and_after_the_purge_it_tells_it_was_purged(
    platform, closed_case
):
    case_id, _ = closed_case
    with pytest.raises(NotAuthorised):
        platform.retention.schedule_for(case_id, "uwv")
    assert platform.retention.schedule_for(case_id, "gemeente-utrecht")

    platform.purge(YEARS_3)

    records = platform.retention.schedule_for(case_id, "uwv")
    assert {r.record_kind: r.status for r in records}["case_records"] == "purged"


def test_erasure_is_refused_while_the_case_runs_with_a_reason_the_citizen_understands(platform):
    case_id = platform.register()
    platform.share(case_id)

    result = platform.erase(case_id, language="en")

    assert result.decision == "refused" and result.reason_code == "case_open"
    assert result.reason is not None and "still running" in result.reason
    assert result.article == "AVG art. 17(3)(b)"
    [refused] = platform.published("ErasureRefused")
    assert refused.data.reason_code == "case_open"
    assert platform.vault.keys.live_keys(case_id) != []
    [case] = platform.notification.overview_for(platform.subject, "nl").to_json()["cases"]
    [request] = case["erasure_requests"]
    assert request["decision"] == "refused" and "Uw casus loopt nog" in request["reason"]


def test_erasure_once_the_case_has_ended_purges_the_citizens_records_at_once(platform, closed_case):
    case_id, _ = closed_case

    assert platform.erase(case_id) == ErasureDecision(case_id, "granted")

    assert platform.vault.keys.live_keys(case_id) == []
    purged = platform.published("RecordsPurged")
    assert {e.data.reason for e in purged} == {"erasure"}
    assert purged[-1].data.complete and purged[-1].data.recipients == ("kredietbank-utrecht",)
    [case] = platform.notification.overview_for(platform.subject).to_json()["cases"]
    assert case["shares"][0]["purge_reason"] == "erasure"
    assert case["erasure_requests"][0]["decision"] == "granted"
    assert platform.erase(case_id) == ErasureDecision(case_id, "erased_already")


def test_erasure_is_refused_under_a_legal_hold(platform, closed_case):
    case_id, _ = closed_case
    platform.hold(case_id, reason_code="court_case", reference=None)

    result = platform.erase(case_id)

    assert (result.decision, result.reason_code) == ("refused", "legal_hold")
    assert len(platform.vault.keys.live_keys(case_id)) == 2


def test_the_schedule_is_rebuilt_from_the_events_alone_after_a_purge(platform, closed_case):
    case_id, _ = closed_case
    still_running = platform.register()
    platform.purge(YEARS_3)
    before = {c: platform.retention.schedule_for(c) for c in (case_id, still_running)}

    upstream = [*received(platform.registration), *received(platform.sharing)]
    platform.retention.rebuild_schedule(upstream)

    assert {c: platform.retention.schedule_for(c) for c in (case_id, still_running)} == before
    assert platform.retention.cases.get(case_id) is None
    assert platform.retention.cases.get(still_running) is not None


def test_a_dry_run_plan_lists_ids_rules_and_dates_and_nothing_personal(platform, closed_case):
    case_id, _ = closed_case
    plan = platform.retention.plan_purge(datetime.now(UTC) + YEARS_3)
    listed = [(p.case_id, p.record_kind, p.records, p.rule, p.on_hold) for p in plan]
    assert listed == [
        (case_id, "case_records", 1, "consultation-short/case_records v1", False),
        (case_id, "share_records", 1, "consultation-short/share_records v1", False),
    ]
    assert all(p.due_on is not None and p.due_on <= (datetime.now(UTC) + YEARS_3).date() for p in plan)
    for personal in (platform.subject, CITIZEN["name"], CITIZEN["bsn"], CITIZEN["email"]):
        assert personal not in str([*listed, *(p.due_on for p in plan)])
    assert platform.published("RecordsPurged") == []
