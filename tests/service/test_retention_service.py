"""The retention service's entrypoints, each through nameko's ``worker_factory``: the message is
loaded through its schema, one use case is called with the typed command (or the received
event, or the query's typed values), and its result is answered through its schema, as agencies
and the gateway have always read it."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nameko.testing.services import worker_factory

from services.retention.application import ErasureDecision, LegalHoldStatus
from services.retention.purge_plan import PurgeReport
from services.retention.schedule import ScheduleEntry
from services.retention.service import RetentionService
from shared.contracts.commands import LiftLegalHold, PlaceLegalHold, RequestErasure
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.base import AgreementRef, ContactPointRef, ParticipantRef, SubjectRef
from shared.contracts.events.case_registration import CaseClosed, CaseRegistered, CaseResumed, CaseStopped
from shared.contracts.events.data_sharing import DataShared
from shared.errors import InvalidRequest, NotAuthorised

UTRECHT = "gemeente-utrecht"
SUBJECT = "a" * 32
CLOSED_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class RecordingUseCases:
    """Stands in for ``RetentionUseCases``: records every call and answers what it is told to
    (``schedule``, ``erasure``, ``report``); ``refuse`` makes the next use case refuse."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.refuse: Exception | None = None
        self.schedule: tuple[ScheduleEntry, ...] = ()
        self.erasure: ErasureDecision | None = None
        self.report = PurgeReport()

    def _record(self, use_case: str, given: Any) -> None:
        self.calls.append((use_case, given))
        if self.refuse is not None:
            raise self.refuse

    def place_legal_hold(self, command: PlaceLegalHold) -> LegalHoldStatus:
        self._record("place_legal_hold", command)
        return LegalHoldStatus(command.case_id, command.hold_id or uuid.uuid4(), "in_force")

    def lift_legal_hold(self, command: LiftLegalHold) -> LegalHoldStatus:
        self._record("lift_legal_hold", command)
        return LegalHoldStatus(command.case_id, command.hold_id, "lifted")

    def request_erasure(self, request: RequestErasure) -> ErasureDecision:
        self._record("request_erasure", request)
        return self.erasure or ErasureDecision(request.case_id, "granted")

    def schedule_for(self, case_id: uuid.UUID, agency: str | None = None) -> tuple[ScheduleEntry, ...]:
        self._record("schedule_for", (case_id, agency))
        return self.schedule

    def purge_due(self, as_of: datetime | None = None) -> PurgeReport:
        self._record("purge_due", as_of)
        return self.report

    def record_case_registered(self, event: ReceivedEvent[CaseRegistered]) -> None:
        self._record("record_case_registered", event)

    def record_case_closed(self, event: ReceivedEvent[CaseClosed]) -> None:
        self._record("record_case_closed", event)

    def record_case_stopped_or_resumed(self, event: ReceivedEvent[CaseStopped | CaseResumed]) -> None:
        self._record("record_case_stopped_or_resumed", event)

    def record_data_shared(self, event: ReceivedEvent[DataShared]) -> None:
        self._record("record_data_shared", event)


@pytest.fixture
def use_cases() -> RecordingUseCases:
    return RecordingUseCases()


@pytest.fixture
def service(use_cases: RecordingUseCases) -> RetentionService:
    return worker_factory(
        RetentionService, retention=use_cases, health_check=lambda: {"service": "retention", "ok": True}
    )


def hold_command(case_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "agency": UTRECHT,
        "case_id": case_id,
        "reason_code": "complaint",
        "reference": "KL-2026/0042",
        **changes,
    }


def received(data: Any, source: str = "case_registration") -> ReceivedEvent[Any]:
    return ReceivedEvent(
        name=type(data).__name__,
        source=source,
        position=1,
        message_id=uuid.uuid4(),
        occurred_at=CLOSED_AT,
        aggregate_id=uuid.uuid4(),
        aggregate_version=1,
        correlation_id=None,
        data=data,
    )


# -- legal holds ------------------------------------------------------------------------------
def test_place_legal_hold_hands_the_use_case_a_place_legal_hold_and_answers_the_hold_in_force(
    service, use_cases
):
    case_id, hold_id = str(uuid.uuid4()), str(uuid.uuid4())
    reply = service.place_legal_hold(hold_command(case_id, hold_id=hold_id))
    assert json.dumps(reply) == json.dumps({"case_id": case_id, "hold_id": hold_id, "status": "in_force"})
    assert use_cases.calls == [
        (
            "place_legal_hold",
            PlaceLegalHold(
                agency=UTRECHT,
                case_id=uuid.UUID(case_id),
                hold_id=uuid.UUID(hold_id),
                reason_code="complaint",
                reference="KL-2026/0042",
            ),
        )
    ]


def test_a_legal_hold_whose_reference_could_hold_a_name_is_refused_before_any_use_case_runs(
    service, use_cases
):
    with pytest.raises(InvalidRequest) as error:
        service.place_legal_hold(hold_command(str(uuid.uuid4()), reference="Sanne de Vries"))
    assert (error.value.code, error.value.field) == ("invalid_field", "reference")
    assert "Sanne" not in str(error.value)
    assert use_cases.calls == []


def test_lift_legal_hold_hands_the_use_case_a_lift_legal_hold_and_answers_the_hold_lifted(service, use_cases):
    case_id, hold_id = str(uuid.uuid4()), str(uuid.uuid4())
    command = {"schema_version": 1, "agency": UTRECHT, "case_id": case_id, "hold_id": hold_id}
    reply = service.lift_legal_hold(command)
    assert json.dumps(reply) == json.dumps({"case_id": case_id, "hold_id": hold_id, "status": "lifted"})
    assert use_cases.calls == [
        (
            "lift_legal_hold",
            LiftLegalHold(agency=UTRECHT, case_id=uuid.UUID(case_id), hold_id=uuid.UUID(hold_id)),
        )
    ]


def test_a_refusal_of_the_use_case_reaches_the_caller_as_it_is(service, use_cases):
    use_cases.refuse = NotAuthorised("not_a_participant", "your agency does not take part in this case")
    with pytest.raises(NotAuthorised) as error:
        service.place_legal_hold(hold_command(str(uuid.uuid4()), agency="uwv"))
    assert error.value.code == "not_a_participant"


# -- erasure ----------------------------------------------------------------------------------
def test_a_granted_erasure_is_answered_with_its_decision_and_no_reason(service, use_cases):
    case_id = str(uuid.uuid4())
    reply = service.request_erasure({"subject": SUBJECT, "case_id": case_id})
    assert json.dumps(reply) == json.dumps({"case_id": case_id, "decision": "granted"})
    assert use_cases.calls == [
        ("request_erasure", RequestErasure(subject=SUBJECT, case_id=uuid.UUID(case_id), language="nl"))
    ]


def test_a_refused_erasure_is_answered_with_its_reason_code_its_words_and_its_article(service, use_cases):
    case_id = uuid.uuid4()
    use_cases.erasure = ErasureDecision(
        case_id,
        "refused",
        reason_code="case_open",
        reason="Your case is still running.",
        article="AVG art. 17(3)(b)",
    )
    reply = service.request_erasure({"subject": SUBJECT, "case_id": str(case_id), "language": "en"})
    assert json.dumps(reply) == json.dumps(
        {
            "case_id": str(case_id),
            "decision": "refused",
            "reason_code": "case_open",
            "reason": "Your case is still running.",
            "article": "AVG art. 17(3)(b)",
        }
    )
    [(_, given)] = use_cases.calls
    assert given.language == "en"


def test_an_erasure_request_naming_a_bsn_instead_of_the_sessions_pseudonym_is_refused(service, use_cases):
    with pytest.raises(InvalidRequest) as error:
        service.request_erasure({"subject": SUBJECT, "case_id": str(uuid.uuid4()), "bsn": "111222333"})
    assert error.value.field == "bsn" and "111222333" not in str(error.value)
    assert use_cases.calls == []


# -- the schedule -----------------------------------------------------------------------------
def test_get_schedule_asks_for_the_agencys_view_and_answers_each_record_as_before(service, use_cases):
    case_id = uuid.uuid4()
    share_id = str(uuid.uuid4())
    due = CLOSED_AT + timedelta(weeks=6)
    use_cases.schedule = (
        ScheduleEntry(
            record_id=str(case_id),
            case_id=case_id,
            record_kind="case_records",
            recipient=None,
            retention_class="consultation-short",
            rule_version=1,
            catalogue_version="2026.11.4",
            counted_from=CLOSED_AT,
            due_at=due,
            status="on_hold",
            purged_at=None,
        ),
        ScheduleEntry(
            record_id=share_id,
            case_id=case_id,
            record_kind="share_records",
            recipient="kredietbank-utrecht",
            retention_class="consultation-short",
            rule_version=1,
            catalogue_version="2026.11.4",
            counted_from=CLOSED_AT,
            due_at=None,
            status="purged",
            purged_at=due,
        ),
    )

    reply = service.get_schedule(str(case_id), UTRECHT)

    assert use_cases.calls == [("schedule_for", (case_id, UTRECHT))]
    assert json.dumps(reply) == json.dumps(
        [
            {
                "record_id": str(case_id),
                "case_id": str(case_id),
                "record_kind": "case_records",
                "recipient": None,
                "retention_class": "consultation-short",
                "rule_version": 1,
                "catalogue_version": "2026.11.4",
                "counted_from": "2026-03-02T09:30:00+00:00",
                "due_at": "2026-04-13T09:30:00+00:00",
                "status": "on_hold",
                "purged_at": None,
                "rule": "consultation-short/case_records v1",
            },
            {
                "record_id": share_id,
                "case_id": str(case_id),
                "record_kind": "share_records",
                "recipient": "kredietbank-utrecht",
                "retention_class": "consultation-short",
                "rule_version": 1,
                "catalogue_version": "2026.11.4",
                "counted_from": "2026-03-02T09:30:00+00:00",
                "due_at": None,
                "status": "purged",
                "purged_at": "2026-04-13T09:30:00+00:00",
                "rule": "consultation-short/share_records v1",
            },
        ]
    )


def test_get_schedule_of_something_that_is_not_a_case_id_is_refused(service, use_cases):
    with pytest.raises(InvalidRequest) as error:
        service.get_schedule("not-a-case", UTRECHT)
    assert (error.value.code, error.value.field) == ("invalid_field", "case_id")
    assert use_cases.calls == []


# -- the purge timer --------------------------------------------------------------------------
def test_the_purge_timer_runs_the_due_purges_and_logs_how_many_it_purged_and_held(service, use_cases, caplog):
    use_cases.report = PurgeReport(purged=2, held=1, by_kind={"case_records": 1, "share_records": 1})
    with caplog.at_level(logging.INFO, logger="services.retention.service"):
        service.purge_due()
    assert use_cases.calls == [("purge_due", None)]
    assert [r.getMessage() for r in caplog.records] == ["purge run: 2 purged, 1 held by a legal hold"]


def test_a_purge_run_with_nothing_to_do_logs_nothing(service, use_cases, caplog):
    with caplog.at_level(logging.INFO, logger="services.retention.service"):
        service.purge_due()
    assert use_cases.calls == [("purge_due", None)]
    assert caplog.records == []


# -- events -----------------------------------------------------------------------------------
def test_each_event_goes_to_its_use_case_as_it_was_received(service, use_cases):
    case_id, objection_id = uuid.uuid4(), uuid.uuid4()
    contact_point = ContactPointRef(agency=UTRECHT, function="casusregisseur")
    registered = received(
        CaseRegistered(
            case_id=case_id,
            table="schulden-en-wonen",
            purpose="debt_assistance",
            subjects=(SubjectRef(pseudonym=SUBJECT, role="main", minor=False, represented_by=None),),
            participants=(ParticipantRef(agency=UTRECHT, role="coordinator", legal_ground="statutory_task"),),
            agreement=(AgreementRef(agency=UTRECHT, bring=("housing",), receive=("debts",)),),
            record_holder=UTRECHT,
            retention_class="consultation-short",
            contact_point=contact_point,
            participation="attends",
            informed_beforehand=True,
            registered_by=UTRECHT,
            catalogue_version="2026.11.4",
        )
    )
    stopped = received(
        CaseStopped(case_id=case_id, subject=SUBJECT, objection_id=objection_id, status="stopped")
    )
    resumed = received(
        CaseResumed(case_id=case_id, subject=SUBJECT, objection_id=objection_id, status="active")
    )
    closed = received(CaseClosed(case_id=case_id, outcome="help_arranged", closed_by=UTRECHT))
    shared = received(
        DataShared(
            share_id=uuid.uuid4(),
            request_id=uuid.uuid4(),
            case_id=case_id,
            subject=SUBJECT,
            from_agency=UTRECHT,
            to_agency="kredietbank-utrecht",
            categories=("debts",),
            purpose="debt_assistance",
            sender_ground="statutory_task",
            recipient_ground="statutory_task",
            special_grounds={},
            form="written",
            meeting_id=None,
            direction="push",
            override_id=None,
            contact_point=contact_point,
            catalogue_version="2026.11.4",
            correlation_id=None,
        ),
        source="data_sharing",
    )

    service.handle_case_registered(registered)
    service.handle_case_stopped(stopped)
    service.handle_case_resumed(resumed)
    service.handle_case_closed(closed)
    service.handle_data_shared(shared)

    assert use_cases.calls == [
        ("record_case_registered", registered),
        ("record_case_stopped_or_resumed", stopped),
        ("record_case_stopped_or_resumed", resumed),
        ("record_case_closed", closed),
        ("record_data_shared", shared),
    ]


def test_health_answers_the_services_health_check(service):
    assert service.health() == {"service": "retention", "ok": True}
