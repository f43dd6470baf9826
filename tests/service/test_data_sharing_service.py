"""The data_sharing service's entrypoints, each through nameko's ``worker_factory``: the message
is loaded through its schema (the BSN becomes a pseudonym there), one use case is called with
the typed command, and its result is answered through the command's reply schema."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from nameko.testing.services import worker_factory

from keten.demo import CITIZEN
from services.data_sharing.application import (
    AgencyLedger,
    CategoryDecision,
    CorrectionPassedOn,
    CorrectionRecorded,
    ShareDecision,
    ShareDecisions,
)
from services.data_sharing.service import DataSharingService
from shared.contracts.commands import CorrectShare, GetLedger, RequestShare
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.base import AgreementRef, ContactPointRef, ParticipantRef
from shared.contracts.events.case_registration import (
    CaseActivated,
    CaseClosed,
    CaseRegistered,
    CaseResumed,
    CaseStopped,
    ParticipantAdded,
    ParticipantRemoved,
)
from shared.contracts.events.consent import (
    ConsentGiven,
    ConsentWithdrawn,
    ObjectionLodged,
    ObjectionWithdrawn,
    RecordedBy,
    SafetyOverrideEnded,
    SafetyOverrideRecorded,
)
from shared.contracts.events.retention import RecordsPurged
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.pseudonym import Pseudonymiser, pseudonymise
from tests.factories import share_command

SECRET = b"d" * 32
UTRECHT = "gemeente-utrecht"
KREDIETBANK = "kredietbank-utrecht"
MITROS = "woningcorporatie-mitros"


class RecordingUseCases:
    """Stands in for ``DataSharingUseCases``: records every call and answers what it is told
    to (``decisions``, ``passed_on_to``); ``refuse`` makes the next use case refuse with that
    error."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.refuse: Exception | None = None
        self.decisions: tuple[ShareDecision, ...] = ()
        self.passed_on_to: tuple[CorrectionPassedOn, ...] = ()

    def _record(self, use_case: str, given: Any) -> None:
        self.calls.append((use_case, given))
        if self.refuse is not None:
            raise self.refuse

    def request_share(self, command: RequestShare) -> ShareDecisions:
        self._record("request_share", command)
        return ShareDecisions(command.request_id, self.decisions)

    def correct_share(self, command: CorrectShare) -> CorrectionRecorded:
        self._record("correct_share", command)
        return CorrectionRecorded(command.correction_id, command.share_id, self.passed_on_to)

    def get_ledger(self, command: GetLedger) -> AgencyLedger:
        self._record("get_ledger", command)
        return AgencyLedger(command.agency, command.since, command.until, ())

    def record_case_event(self, event: ReceivedEvent[Any]) -> None:
        self._record("record_case_event", event)

    def record_consent_given(self, event: ReceivedEvent[ConsentGiven]) -> None:
        self._record("record_consent_given", event)

    def record_consent_withdrawn(self, event: ReceivedEvent[ConsentWithdrawn]) -> None:
        self._record("record_consent_withdrawn", event)

    def record_objection(self, event: ReceivedEvent[ObjectionLodged | ObjectionWithdrawn]) -> None:
        self._record("record_objection", event)

    def record_safety_override(
        self, event: ReceivedEvent[SafetyOverrideRecorded | SafetyOverrideEnded]
    ) -> None:
        self._record("record_safety_override", event)

    def record_records_purged(self, event: ReceivedEvent[RecordsPurged]) -> None:
        self._record("record_records_purged", event)


@pytest.fixture
def use_cases() -> RecordingUseCases:
    return RecordingUseCases()


@pytest.fixture
def service(use_cases: RecordingUseCases) -> DataSharingService:
    return worker_factory(
        DataSharingService,
        sharing=use_cases,
        pseudonyms=Pseudonymiser(SECRET),
        health_check=lambda: {"service": "data_sharing", "ok": True},
    )


def received(data: Any, source: str) -> ReceivedEvent[Any]:
    return ReceivedEvent(
        name=type(data).__name__,
        source=source,
        position=1,
        message_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        aggregate_id=uuid.uuid4(),
        aggregate_version=1,
        correlation_id=None,
        data=data,
    )


def test_request_share_hands_the_use_case_a_request_share_with_the_pseudonym(service, use_cases):
    case_id = str(uuid.uuid4())
    command = share_command(case_id, to_agencies=[KREDIETBANK, MITROS], content="Drie maanden achterstand.")
    service.request_share(command)
    [(use_case, given)] = use_cases.calls
    assert use_case == "request_share" and isinstance(given, RequestShare)
    assert (given.agency, given.case_id, given.request_id) == (
        UTRECHT,
        uuid.UUID(case_id),
        uuid.UUID(command["request_id"]),
    )
    assert (given.to_agencies, given.categories, given.direction) == (
        (KREDIETBANK, MITROS),
        ("debts",),
        "push",
    )
    assert given.subject == pseudonymise(CITIZEN["bsn"], SECRET)
    assert CITIZEN["bsn"] not in repr(given)


def test_request_share_answers_one_decision_per_recipient_as_the_reply_schema_says(service, use_cases):
    shared, refused, override = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    use_cases.decisions = (
        ShareDecision(shared, KREDIETBANK, "shared", "allowed", None, override),
        ShareDecision(refused, MITROS, "refused", "category_not_agreed", "Not in the agreement.", None),
    )
    command = share_command(str(uuid.uuid4()), to_agencies=[KREDIETBANK, MITROS])
    assert service.request_share(command) == {
        "request_id": command["request_id"],
        "outcome": "partial",
        "decisions": [
            {
                "share_id": str(shared),
                "to_agency": KREDIETBANK,
                "outcome": "shared",
                "reason_code": "allowed",
                "reason": None,
                "override_id": str(override),
                "categories": [],
            },
            {
                "share_id": str(refused),
                "to_agency": MITROS,
                "outcome": "refused",
                "reason_code": "category_not_agreed",
                "reason": "Not in the agreement.",
                "override_id": None,
                "categories": [],
            },
        ],
    }


def test_a_partial_decision_names_every_category_and_leads_with_its_refusal(service, use_cases):
    shared, refused = uuid.uuid4(), uuid.uuid4()
    use_cases.decisions = (
        ShareDecision(
            shared,
            KREDIETBANK,
            "partial",
            "category_not_agreed",
            "Not in the agreement.",
            None,
            (
                CategoryDecision("debts", "shared", "allowed", None, shared),
                CategoryDecision(
                    "health", "refused", "category_not_agreed", "Not in the agreement.", refused
                ),
            ),
        ),
    )
    answer = service.request_share(share_command(str(uuid.uuid4()), categories=["debts", "health"]))
    assert answer["outcome"] == "partial"
    [decision] = answer["decisions"]
    assert (decision["outcome"], decision["reason_code"]) == ("partial", "category_not_agreed")
    assert [(c["category"], c["outcome"], c["share_id"]) for c in decision["categories"]] == [
        ("debts", "shared", str(shared)),
        ("health", "refused", str(refused)),
    ]


def test_a_pull_request_names_the_agency_that_holds_the_data(service, use_cases):
    command = share_command(str(uuid.uuid4()), direction="pull", from_agency=KREDIETBANK)
    service.request_share(command)
    [(_, given)] = use_cases.calls
    assert (given.direction, given.from_agency, given.agency) == ("pull", KREDIETBANK, UTRECHT)


def test_a_request_that_fails_its_schema_is_refused_before_any_use_case_runs(service, use_cases):
    command = share_command(str(uuid.uuid4()), subject_bsn="123456789")
    with pytest.raises(InvalidRequest) as error:
        service.request_share(command)
    assert (error.value.code, error.value.field) == ("invalid_field", "subject_bsn")
    assert "123456789" not in str(error.value)
    assert use_cases.calls == []


def test_a_refusal_of_the_use_case_reaches_the_caller_as_it_is(service, use_cases):
    use_cases.refuse = NotFound("unknown_case", "no case with this id (yet)", "case_id")
    with pytest.raises(NotFound) as error:
        service.request_share(share_command(str(uuid.uuid4())))
    assert (error.value.code, error.value.field) == ("unknown_case", "case_id")


def correction_command(share_id: uuid.UUID, **changes: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "agency": UTRECHT,
        "correction_id": str(uuid.uuid4()),
        "share_id": str(share_id),
        "content": "Twee maanden achterstand.",
        "reason_code": "factual_error",
        **changes,
    }


def test_correct_share_hands_the_use_case_a_correct_share_and_answers_where_it_went(service, use_cases):
    share_id, other = uuid.uuid4(), uuid.uuid4()
    use_cases.passed_on_to = (CorrectionPassedOn(share_id, KREDIETBANK), CorrectionPassedOn(other, MITROS))
    command = correction_command(share_id)
    assert service.correct_share(command) == {
        "correction_id": command["correction_id"],
        "share_id": str(share_id),
        "passed_on_to": [
            {"share_id": str(share_id), "to_agency": KREDIETBANK},
            {"share_id": str(other), "to_agency": MITROS},
        ],
    }
    assert use_cases.calls == [
        (
            "correct_share",
            CorrectShare(
                agency=UTRECHT,
                correction_id=uuid.UUID(command["correction_id"]),
                share_id=share_id,
                content="Twee maanden achterstand.",
                content_reference=None,
                reason_code="factual_error",
            ),
        )
    ]


def test_a_correction_that_fails_its_schema_changes_nothing(service, use_cases):
    with pytest.raises(InvalidRequest) as error:
        service.correct_share(correction_command(uuid.uuid4(), content=""))
    assert error.value.field == "content"
    assert use_cases.calls == []


def test_a_refused_correction_reaches_the_caller_as_it_is(service, use_cases):
    use_cases.refuse = Conflict("share_purged", "the share's records were purged", "share_id")
    with pytest.raises(Conflict) as error:
        service.correct_share(correction_command(uuid.uuid4()))
    assert error.value.code == "share_purged"


def case_events(case_id: uuid.UUID) -> list[ReceivedEvent[Any]]:
    subject, objection = "a" * 32, uuid.uuid4()
    participant = ParticipantRef(agency=MITROS, role="housing_corporation", legal_ground="consent")
    events = [
        CaseRegistered(
            case_id=case_id,
            table="schulden-utrecht",
            purpose="debt_assistance",
            subjects=(),
            participants=(participant,),
            agreement=(),
            record_holder=UTRECHT,
            retention_class="consultation-short",
            contact_point=ContactPointRef(agency=UTRECHT, function="casusregisseur"),
            participation="attends",
            informed_beforehand=True,
            registered_by=UTRECHT,
            catalogue_version="test",
        ),
        CaseActivated(case_id=case_id, activated_by=UTRECHT),
        CaseStopped(case_id=case_id, subject=subject, objection_id=objection, status="stopped"),
        CaseResumed(case_id=case_id, subject=subject, objection_id=objection, status="active"),
        ParticipantAdded(
            case_id=case_id,
            participant=participant,
            agreement=AgreementRef(agency=MITROS, bring=(), receive=("debts",)),
            added_by=UTRECHT,
            catalogue_version="test",
        ),
        ParticipantRemoved(case_id=case_id, agency=MITROS, removed_by=UTRECHT),
        CaseClosed(case_id=case_id, outcome="help_arranged", closed_by=UTRECHT),
    ]
    return [received(data, "case_registration") for data in events]


def test_each_case_event_goes_to_the_case_facts_use_case_as_it_was_received(service, use_cases):
    events = case_events(uuid.uuid4())
    handlers = [
        service.handle_case_registered,
        service.handle_case_activated,
        service.handle_case_stopped,
        service.handle_case_resumed,
        service.handle_participant_added,
        service.handle_participant_removed,
        service.handle_case_closed,
    ]
    for handler, event in zip(handlers, events, strict=True):
        handler(event)
    assert use_cases.calls == [("record_case_event", event) for event in events]


def test_each_event_of_consent_and_retention_goes_to_its_use_case_as_it_was_received(service, use_cases):
    case_id, subject, objection, override = uuid.uuid4(), "a" * 32, uuid.uuid4(), uuid.uuid4()
    until = date.today() + timedelta(days=90)
    given = received(
        ConsentGiven(
            record_id=uuid.uuid4(),
            case_id=case_id,
            subject=subject,
            purpose="debt_assistance",
            categories=("housing",),
            recipients=(UTRECHT,),
            valid_until=until,
            notice_version="1",
            given_how="in_writing",
            recorded_by=MITROS,
        ),
        "consent",
    )
    withdrawn = received(
        ConsentWithdrawn(record_id=uuid.uuid4(), case_id=case_id, subject=subject, recorded_by=MITROS),
        "consent",
    )
    lodged = received(
        ObjectionLodged(
            record_id=uuid.uuid4(),
            objection_id=objection,
            case_id=case_id,
            subject=subject,
            recorded_by=UTRECHT,
        ),
        "consent",
    )
    lifted = received(
        ObjectionWithdrawn(
            record_id=uuid.uuid4(),
            objection_id=objection,
            case_id=case_id,
            subject=subject,
            recorded_by=UTRECHT,
        ),
        "consent",
    )
    recorded = received(
        SafetyOverrideRecorded(
            override_id=override,
            case_id=case_id,
            subjects=(subject,),
            categories=("safety_concerns",),
            recipients=("raad-kinderbescherming",),
            ground="child_protection",
            recorded_by=RecordedBy(agency="veilig-thuis-utrecht", function="aandachtsfunctionaris"),
            ends_on=until,
            deferral=None,
            catalogue_version="test",
        ),
        "consent",
    )
    ended = received(
        SafetyOverrideEnded(
            override_id=override, case_id=case_id, reason_code="danger_over", ended_by="veilig-thuis-utrecht"
        ),
        "consent",
    )
    purged = received(
        RecordsPurged(
            retention_id=uuid.uuid4(),
            case_id=case_id,
            scope="case",
            subject=None,
            record_kind="share_records",
            record_ids=(str(uuid.uuid4()),),
            recipients=(KREDIETBANK,),
            retention_class="consultation-short",
            rule_version=1,
            catalogue_version="test",
            due_at=None,
            reason="retention",
            complete=True,
        ),
        "retention",
    )
    service.handle_consent_given(given)
    service.handle_consent_withdrawn(withdrawn)
    service.handle_objection_lodged(lodged)
    service.handle_objection_withdrawn(lifted)
    service.handle_safety_override_recorded(recorded)
    service.handle_safety_override_ended(ended)
    service.handle_records_purged(purged)
    assert use_cases.calls == [
        ("record_consent_given", given),
        ("record_consent_withdrawn", withdrawn),
        ("record_objection", lodged),
        ("record_objection", lifted),
        ("record_safety_override", recorded),
        ("record_safety_override", ended),
        ("record_records_purged", purged),
    ]


def test_health_answers_the_services_health_check(service):
    assert service.health() == {"service": "data_sharing", "ok": True}


def test_get_ledger_hands_the_use_case_the_query_and_answers_the_ledger(service, use_cases):
    case_id = str(uuid.uuid4())
    answer = service.get_ledger(
        {
            "schema_version": 1,
            "agency": KREDIETBANK,
            "side": "received",
            "since": "2026-01-01",
            "until": "2026-12-31",
            "case_id": case_id,
        }
    )
    [(use_case, given)] = use_cases.calls
    assert use_case == "get_ledger" and isinstance(given, GetLedger)
    assert (given.agency, given.of_agency, given.side, given.case_id) == (
        KREDIETBANK,
        None,
        "received",
        uuid.UUID(case_id),
    )
    assert answer == {"agency": KREDIETBANK, "since": "2026-01-01", "until": "2026-12-31", "entries": []}


def test_a_ledger_query_that_fails_its_schema_is_refused_before_any_use_case_runs(service, use_cases):
    with pytest.raises(InvalidRequest) as refused:
        service.get_ledger({"schema_version": 1, "agency": KREDIETBANK, "side": "everything"})
    assert refused.value.field == "side"
    assert use_cases.calls == []
