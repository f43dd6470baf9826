"""The notification service's entrypoints, each through nameko's ``worker_factory``: a command
is loaded through its schema and handed to one use case as its dataclass; what the use case
answers reaches the caller through the reply schema; events reach their use case as received."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from nameko.testing.services import worker_factory

from services.notification.application import EndedDeferral, ExtendedDeferral
from services.notification.delivery import DeferralDue
from services.notification.service import NotificationService
from services.notification.view import Overview
from shared.contracts.commands import EndDeferral, ExtendDeferral
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.base import ContactPointRef
from shared.contracts.events.consent import ObjectionLodged
from shared.contracts.events.data_sharing import DataShared
from shared.errors import InvalidRequest, NotAuthorised

VEILIG_THUIS = "veilig-thuis-utrecht"
SUBJECT = "a" * 32  # a pseudonym: 32 hex characters


class RecordingUseCases:
    """Stands in for ``NotificationUseCases``: records every call and answers as the real use
    cases answer; ``refuse`` makes the next use case refuse with that error."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.refuse: Exception | None = None
        self.due: list[DeferralDue] = []

    def _called(self, use_case: str, given: Any) -> None:
        self.calls.append((use_case, given))
        if self.refuse is not None:
            raise self.refuse

    def learn(self, event: ReceivedEvent[Any]) -> None:
        self._called("learn", event)

    def notify_share(self, event: ReceivedEvent[DataShared]) -> None:
        self._called("notify_share", event)

    def dispatch_when_due(self) -> int:
        self._called("dispatch_when_due", None)
        return 0

    def end_deferral(self, command: EndDeferral) -> EndedDeferral:
        self._called("end_deferral", command)
        return EndedDeferral(command.override_id, released=2)

    def extend_deferral(self, command: ExtendDeferral) -> ExtendedDeferral:
        self._called("extend_deferral", command)
        return ExtendedDeferral(command.override_id, review_on=command.review_on)

    def deferrals_due(self, agency: str) -> list[DeferralDue]:
        self._called("deferrals_due", agency)
        return self.due

    def overview_for(self, subject: str, language: str) -> Overview:
        self._called("overview_for", (subject, language))
        return Overview(subject=subject, language=language, cases=())


@pytest.fixture
def use_cases() -> RecordingUseCases:
    return RecordingUseCases()


@pytest.fixture
def service(use_cases: RecordingUseCases) -> NotificationService:
    return worker_factory(
        NotificationService,
        notifications=use_cases,
        health_check=lambda: {"service": "notification", "ok": True},
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


def test_end_deferral_hands_the_use_case_an_end_deferral_and_answers_how_many_go_out(service, use_cases):
    override_id = uuid.uuid4()
    command = {"schema_version": 1, "agency": VEILIG_THUIS, "override_id": str(override_id)}
    assert service.end_deferral(command) == {
        "override_id": str(override_id),
        "status": "ended",
        "released": 2,
    }
    assert use_cases.calls == [("end_deferral", EndDeferral(agency=VEILIG_THUIS, override_id=override_id))]


def test_extend_deferral_hands_the_use_case_an_extend_deferral_and_answers_the_next_review(
    service, use_cases
):
    override_id, review_on = uuid.uuid4(), date.today() + timedelta(days=30)
    command = {
        "schema_version": 1,
        "agency": VEILIG_THUIS,
        "override_id": str(override_id),
        "review_on": review_on.isoformat(),
        "reason": "Het onderzoek loopt nog.",
    }
    assert service.extend_deferral(command) == {
        "override_id": str(override_id),
        "status": "deferred",
        "review_on": review_on.isoformat(),
    }
    assert use_cases.calls == [
        (
            "extend_deferral",
            ExtendDeferral(
                agency=VEILIG_THUIS,
                override_id=override_id,
                review_on=review_on,
                reason="Het onderzoek loopt nog.",
            ),
        )
    ]


def test_a_deferral_command_that_fails_its_schema_reaches_no_use_case(service, use_cases):
    command = {"schema_version": 1, "agency": VEILIG_THUIS, "override_id": "not-a-uuid"}
    with pytest.raises(InvalidRequest) as error:
        service.end_deferral(command)
    assert error.value.field == "override_id"
    with pytest.raises(InvalidRequest) as error:
        service.extend_deferral(
            {**command, "override_id": str(uuid.uuid4()), "review_on": "soon", "reason": "x"}
        )
    assert error.value.field in ("review_on", "reason")
    assert use_cases.calls == []


def test_a_refusal_of_the_use_case_reaches_the_caller_as_it_is(service, use_cases):
    use_cases.refuse = NotAuthorised("not_your_deferral", "only the agency that recorded it decides")
    with pytest.raises(NotAuthorised) as error:
        service.end_deferral({"schema_version": 1, "agency": VEILIG_THUIS, "override_id": str(uuid.uuid4())})
    assert error.value.code == "not_your_deferral"


def test_deferrals_due_answers_each_due_deferral_as_plain_json(service, use_cases):
    due = DeferralDue(override_id=uuid.uuid4(), case_id=uuid.uuid4(), review_on=date(2030, 1, 31), held=3)
    use_cases.due = [due]
    assert service.deferrals_due(VEILIG_THUIS) == [
        {
            "override_id": str(due.override_id),
            "case_id": str(due.case_id),
            "review_on": "2030-01-31",
            "held": 3,
        }
    ]
    assert use_cases.calls == [("deferrals_due", VEILIG_THUIS)]


def test_deferrals_due_for_something_that_is_no_agency_id_is_refused(service, use_cases):
    with pytest.raises(InvalidRequest) as error:
        service.deferrals_due("Not An Agency!")
    assert (error.value.code, error.value.field) == ("invalid_agency", "agency")
    assert use_cases.calls == []


def test_a_share_goes_to_notify_share_and_other_events_to_learn_as_received(service, use_cases):
    case_id = uuid.uuid4()
    shared = received(
        DataShared(
            share_id=uuid.uuid4(),
            request_id=uuid.uuid4(),
            case_id=case_id,
            subject=SUBJECT,
            from_agency="gemeente-utrecht",
            to_agency="kredietbank-utrecht",
            categories=("debts",),
            purpose="debt_relief",
            sender_ground="statutory_task",
            recipient_ground="statutory_task",
            special_grounds={},
            form="written",
            meeting_id=None,
            direction="outgoing",
            override_id=None,
            contact_point=ContactPointRef(agency="gemeente-utrecht", function="casusregisseur"),
            catalogue_version="test",
            correlation_id=None,
        ),
        source="data_sharing",
    )
    objection = received(
        ObjectionLodged(
            record_id=uuid.uuid4(),
            objection_id=uuid.uuid4(),
            case_id=case_id,
            subject=SUBJECT,
            recorded_by="gemeente-utrecht",
        ),
        source="consent",
    )
    service.handle_data_shared(shared)
    service.handle_event(objection)
    assert use_cases.calls == [("notify_share", shared), ("learn", objection)]


def test_get_overview_answers_the_citizens_overview_as_json_in_their_language(service, use_cases):
    assert service.get_overview(SUBJECT, "en") == {"subject": SUBJECT, "language": "en", "cases": []}
    assert service.get_overview(SUBJECT, "de")["language"] == "nl", "Dutch unless English is asked"
    assert use_cases.calls == [("overview_for", (SUBJECT, "en")), ("overview_for", (SUBJECT, "nl"))]


def test_get_overview_for_something_that_is_no_pseudonym_is_refused(service, use_cases):
    with pytest.raises(InvalidRequest) as error:
        service.get_overview("999999990")  # a BSN is not a pseudonym: the gateway pseudonymises
    assert (error.value.code, error.value.field) == ("invalid_subject", "subject")
    assert "999999990" not in str(error.value)
    assert use_cases.calls == []


def test_the_timer_sends_what_is_due(service, use_cases):
    service.send_due()
    assert use_cases.calls == [("dispatch_when_due", None)]


def test_health_answers_the_services_health_check(service):
    assert service.health() == {"service": "notification", "ok": True}
