"""The case_registration service's entrypoints, each through nameko's ``worker_factory``: the
message is loaded through its schema (a BSN becomes a pseudonym there), one use case is called
with the typed command, and its result is answered through the command's reply schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from nameko.testing.services import worker_factory

from keten.demo import CITIZEN, close_case_command
from services.case_registration.application import CaseStatus
from services.case_registration.service import CaseRegistrationService
from shared.contracts.commands import (
    ActivateCase,
    AddParticipant,
    CloseCase,
    RegisterCase,
    RemoveParticipant,
)
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.consent import ObjectionLodged, ObjectionWithdrawn
from shared.contracts.events.retention import RecordsPurged
from shared.errors import Conflict, InvalidRequest
from shared.pseudonym import Pseudonymiser, pseudonymise
from tests.factories import activate_command, case_command

SECRET = b"p" * 32
UTRECHT = "gemeente-utrecht"


class RecordingUseCases:
    """Stands in for ``CaseRegistrationUseCases``: records every call and answers as the real
    use cases answer; ``refuse`` makes the next use case refuse with that error."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.refuse: Exception | None = None

    def _answer(self, use_case: str, command: Any, status: str) -> CaseStatus:
        self.calls.append((use_case, command))
        if self.refuse is not None:
            raise self.refuse
        return CaseStatus(command.case_id or uuid.uuid4(), status)

    def register_case(self, command: RegisterCase) -> CaseStatus:
        return self._answer("register_case", command, "registered")

    def activate_case(self, command: ActivateCase) -> CaseStatus:
        return self._answer("activate_case", command, "active")

    def add_participant(self, command: AddParticipant) -> CaseStatus:
        return self._answer("add_participant", command, "active")

    def remove_participant(self, command: RemoveParticipant) -> CaseStatus:
        return self._answer("remove_participant", command, "active")

    def close_case(self, command: CloseCase) -> CaseStatus:
        return self._answer("close_case", command, "closed")

    def record_objection_lodged(self, event: ReceivedEvent[ObjectionLodged]) -> None:
        self.calls.append(("record_objection_lodged", event))

    def record_objection_withdrawn(self, event: ReceivedEvent[ObjectionWithdrawn]) -> None:
        self.calls.append(("record_objection_withdrawn", event))

    def record_records_purged(self, event: ReceivedEvent[RecordsPurged]) -> None:
        self.calls.append(("record_records_purged", event))


@pytest.fixture
def use_cases() -> RecordingUseCases:
    return RecordingUseCases()


@pytest.fixture
def service(use_cases: RecordingUseCases) -> CaseRegistrationService:
    return worker_factory(
        CaseRegistrationService,
        cases=use_cases,
        pseudonyms=Pseudonymiser(SECRET),
        health_check=lambda: {"service": "case_registration", "ok": True},
    )


def received(data: Any, source: str = "consent") -> ReceivedEvent[Any]:
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


def test_register_case_hands_the_use_case_a_register_case_with_pseudonyms_and_answers_its_status(
    service, use_cases
):
    command = case_command()
    assert service.register_case(command) == {"case_id": command["case_id"], "status": "registered"}
    [(use_case, given)] = use_cases.calls
    assert use_case == "register_case" and isinstance(given, RegisterCase)
    assert (given.agency, given.case_id, given.table) == (
        UTRECHT,
        uuid.UUID(command["case_id"]),
        command["table"],
    )
    assert [subject.pseudonym for subject in given.subjects] == [pseudonymise(CITIZEN["bsn"], SECRET)]
    assert CITIZEN["bsn"] not in repr(given)


def test_a_command_that_fails_its_schema_is_refused_before_any_use_case_runs(service, use_cases):
    command = case_command()
    command["subjects"][0]["bsn"] = "123456789"
    with pytest.raises(InvalidRequest) as error:
        service.register_case(command)
    assert (error.value.code, error.value.field) == ("invalid_field", "subjects.0.bsn")
    assert "123456789" not in str(error.value)
    assert use_cases.calls == []


def test_a_refusal_of_the_use_case_reaches_the_caller_as_it_is(service, use_cases):
    use_cases.refuse = Conflict("case_not_open", "the case is already closed")
    with pytest.raises(Conflict) as error:
        service.close_case({**close_case_command(), "case_id": str(uuid.uuid4())})
    assert error.value.code == "case_not_open"


def test_activate_case_hands_the_use_case_an_activate_case(service, use_cases):
    case_id = str(uuid.uuid4())
    assert service.activate_case(activate_command(case_id)) == {"case_id": case_id, "status": "active"}
    assert use_cases.calls == [("activate_case", ActivateCase(agency=UTRECHT, case_id=uuid.UUID(case_id)))]


def test_close_case_hands_the_use_case_a_close_case(service, use_cases):
    case_id = str(uuid.uuid4())
    reply = service.close_case({**close_case_command(), "case_id": case_id})
    assert reply == {"case_id": case_id, "status": "closed"}
    [(use_case, given)] = use_cases.calls
    assert use_case == "close_case"
    assert given == CloseCase(
        agency=UTRECHT, case_id=uuid.UUID(case_id), outcome=close_case_command()["outcome"]
    )


def test_add_participant_hands_the_use_case_an_add_participant(service, use_cases):
    case_id = str(uuid.uuid4())
    command = {
        "schema_version": 1,
        "agency": UTRECHT,
        "case_id": case_id,
        "participant": {"agency": "uwv", "role": "benefits_provider", "legal_ground": "statutory_task"},
        "agreement": {"bring": ["income"], "receive": []},
        "reason": "Het inkomen moet worden uitgezocht.",
    }
    assert service.add_participant(command) == {"case_id": case_id, "status": "active"}
    [(use_case, given)] = use_cases.calls
    assert use_case == "add_participant" and isinstance(given, AddParticipant)
    assert (given.participant.agency, given.participant.legal_ground) == ("uwv", "statutory_task")
    assert (given.agreement.bring, given.agreement.receive) == (("income",), ())
    assert given.reason == command["reason"]


def test_remove_participant_hands_the_use_case_a_remove_participant(service, use_cases):
    case_id = str(uuid.uuid4())
    command = {
        "schema_version": 1,
        "agency": UTRECHT,
        "case_id": case_id,
        "participant": "uwv",
        "reason": "Niet meer nodig.",
    }
    assert service.remove_participant(command) == {"case_id": case_id, "status": "active"}
    assert use_cases.calls == [
        (
            "remove_participant",
            RemoveParticipant(
                agency=UTRECHT, case_id=uuid.UUID(case_id), participant="uwv", reason="Niet meer nodig."
            ),
        )
    ]


def test_each_event_goes_to_its_use_case_as_it_was_received(service, use_cases):
    case_id, subject = uuid.uuid4(), "a" * 32
    lodged = received(
        ObjectionLodged(
            record_id=uuid.uuid4(),
            objection_id=uuid.uuid4(),
            case_id=case_id,
            subject=subject,
            recorded_by=UTRECHT,
        )
    )
    withdrawn = received(
        ObjectionWithdrawn(
            record_id=uuid.uuid4(),
            objection_id=uuid.uuid4(),
            case_id=case_id,
            subject=subject,
            recorded_by=UTRECHT,
        )
    )
    purged = received(
        RecordsPurged(
            retention_id=uuid.uuid4(),
            case_id=case_id,
            scope="case",
            subject=None,
            record_kind="case_records",
            record_ids=(str(case_id),),
            recipients=(),
            retention_class="consultation-short",
            rule_version=1,
            catalogue_version="test",
            due_at=None,
            reason="retention",
            complete=False,
        ),
        source="retention",
    )
    service.handle_objection_lodged(lodged)
    service.handle_objection_withdrawn(withdrawn)
    service.handle_records_purged(purged)
    assert use_cases.calls == [
        ("record_objection_lodged", lodged),
        ("record_objection_withdrawn", withdrawn),
        ("record_records_purged", purged),
    ]


def test_health_answers_the_services_health_check(service):
    assert service.health() == {"service": "case_registration", "ok": True}
