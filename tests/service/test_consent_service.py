"""The consent service's entrypoints, each through nameko's ``worker_factory``: the message is
loaded through its schema (every BSN becomes a pseudonym there), one use case is called with the
typed command, and its result is answered through the command's reply schema."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from nameko.testing.services import worker_factory

from services.consent.application import ConsentRecorded, ObjectionStatus, SafetyOverrideStatus
from services.consent.domain import consent_record_id
from services.consent.service import ConsentService
from shared.contracts.commands import (
    EndSafetyOverride,
    GiveConsent,
    LodgeObjection,
    RecordSafetyOverride,
    WithdrawConsent,
    WithdrawObjection,
)
from shared.contracts.commands.consent import DeferralInput
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.base import AgreementRef, ContactPointRef, ParticipantRef, SubjectRef
from shared.contracts.events.case_registration import (
    CaseActivated,
    CaseClosed,
    CaseRegistered,
    CaseResumed,
    CaseStopped,
    ParticipantAdded,
    ParticipantRemoved,
)
from shared.contracts.events.retention import RecordsPurged
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.pseudonym import Pseudonymiser, pseudonymise
from tests.factories import (
    CITIZEN,
    DAUGHTER,
    MOTHER,
    consent_command,
    objection_command,
    override_command,
)

SECRET = b"p" * 32
UTRECHT = "gemeente-utrecht"
VEILIG_THUIS = "veilig-thuis-utrecht"


def pseudonym(bsn: str) -> str:
    return pseudonymise(bsn, SECRET)


class RecordingUseCases:
    """Stands in for ``ConsentUseCases``: records every call and answers as the real use cases
    answer; ``refuse`` makes the next use case refuse with that error."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.refuse: Exception | None = None

    def _record(self, use_case: str, given: Any) -> None:
        self.calls.append((use_case, given))
        if self.refuse is not None:
            raise self.refuse

    def give_consent(self, command: GiveConsent) -> ConsentRecorded:
        self._record("give_consent", command)
        return ConsentRecorded(consent_record_id(command.case_id, command.subject), 1)

    def withdraw_consent(self, command: WithdrawConsent) -> ConsentRecorded:
        self._record("withdraw_consent", command)
        return ConsentRecorded(consent_record_id(command.case_id, command.subject), 0)

    def lodge_objection(self, command: LodgeObjection) -> ObjectionStatus:
        self._record("lodge_objection", command)
        record_id = consent_record_id(command.case_id, command.subject)
        return ObjectionStatus(record_id, command.objection_id or uuid.uuid4())

    def withdraw_objection(self, command: WithdrawObjection) -> ObjectionStatus:
        self._record("withdraw_objection", command)
        return ObjectionStatus(consent_record_id(command.case_id, command.subject), None)

    def record_safety_override(self, command: RecordSafetyOverride) -> SafetyOverrideStatus:
        self._record("record_safety_override", command)
        return SafetyOverrideStatus(command.override_id or uuid.uuid4(), "in_force")

    def end_safety_override(self, command: EndSafetyOverride) -> SafetyOverrideStatus:
        self._record("end_safety_override", command)
        return SafetyOverrideStatus(command.override_id, "ended")

    def record_case_event(self, event: ReceivedEvent[Any]) -> None:
        self.calls.append(("record_case_event", event))

    def record_records_purged(self, event: ReceivedEvent[RecordsPurged]) -> None:
        self.calls.append(("record_records_purged", event))


@pytest.fixture
def use_cases() -> RecordingUseCases:
    return RecordingUseCases()


@pytest.fixture
def service(use_cases: RecordingUseCases) -> ConsentService:
    return worker_factory(
        ConsentService,
        consents=use_cases,
        pseudonyms=Pseudonymiser(SECRET),
        health_check=lambda: {"service": "consent", "ok": True},
    )


def received(data: Any, source: str = "case_registration") -> ReceivedEvent[Any]:
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


def test_give_consent_hands_the_use_case_a_give_consent_with_the_pseudonym_and_answers_the_record(
    service, use_cases
):
    case_id = uuid.uuid4()
    reply = service.give_consent(consent_command(str(case_id)))
    record_id = consent_record_id(case_id, pseudonym(CITIZEN["bsn"]))
    assert reply == {"record_id": str(record_id), "consents": 1}
    [(use_case, given)] = use_cases.calls
    assert use_case == "give_consent"
    assert given == GiveConsent(
        agency=UTRECHT,
        case_id=case_id,
        subject=pseudonym(CITIZEN["bsn"]),
        purpose="debt_assistance",
        categories=("housing", "debts"),
        recipients=("woningcorporatie-mitros",),
        valid_until=date.fromisoformat(consent_command(str(case_id))["valid_until"]),
        notice_version="debt-2026-1",
        notice_text="Ik geef toestemming voor het delen van mijn huurachterstand.",
        given_how="in_person",
    )
    assert CITIZEN["bsn"] not in repr(given)


def test_a_command_that_fails_its_schema_is_refused_before_any_use_case_runs(service, use_cases):
    with pytest.raises(InvalidRequest) as error:
        service.give_consent(consent_command(str(uuid.uuid4()), subject_bsn="123456789"))
    assert (error.value.code, error.value.field) == ("invalid_field", "subject_bsn")
    assert "123456789" not in str(error.value)
    with pytest.raises(InvalidRequest) as error:
        service.give_consent(consent_command(str(uuid.uuid4()), given_how="by_carrier_pigeon"))
    assert error.value.field == "given_how"
    assert use_cases.calls == []


def test_a_refusal_of_the_use_case_reaches_the_caller_as_it_is(service, use_cases):
    use_cases.refuse = Conflict("case_not_open", "the case is closed", "case_id")
    with pytest.raises(Conflict) as error:
        service.lodge_objection(objection_command(str(uuid.uuid4())))
    assert (error.value.code, error.value.field) == ("case_not_open", "case_id")


def test_withdraw_consent_hands_the_use_case_a_withdraw_consent(service, use_cases):
    case_id = uuid.uuid4()
    command = {"schema_version": 1, "agency": UTRECHT, "case_id": str(case_id), "subject_bsn": CITIZEN["bsn"]}
    reply = service.withdraw_consent(command)
    assert reply == {"record_id": str(consent_record_id(case_id, pseudonym(CITIZEN["bsn"]))), "consents": 0}
    assert use_cases.calls == [
        (
            "withdraw_consent",
            WithdrawConsent(agency=UTRECHT, case_id=case_id, subject=pseudonym(CITIZEN["bsn"])),
        )
    ]


def test_lodge_objection_answers_the_objection_now_in_force(service, use_cases):
    case_id, objection_id = uuid.uuid4(), uuid.uuid4()
    reply = service.lodge_objection(objection_command(str(case_id), objection_id=str(objection_id)))
    record_id = consent_record_id(case_id, pseudonym(CITIZEN["bsn"]))
    assert reply == {"record_id": str(record_id), "objection_id": str(objection_id)}
    [(use_case, given)] = use_cases.calls
    assert use_case == "lodge_objection"
    assert given == LodgeObjection(
        agency=UTRECHT,
        case_id=case_id,
        subject=pseudonym(CITIZEN["bsn"]),
        objection_id=objection_id,
        reason=objection_command(str(case_id))["reason"],
    )


def test_an_objection_without_an_id_or_reason_reaches_the_use_case_without_them(service, use_cases):
    command = objection_command(str(uuid.uuid4()))
    del command["reason"]
    service.lodge_objection(command)
    [(_, given)] = use_cases.calls
    assert (given.objection_id, given.reason) == (None, None)


def test_withdraw_objection_answers_that_no_objection_is_in_force(service, use_cases):
    case_id, objection_id = uuid.uuid4(), uuid.uuid4()
    command = {
        "schema_version": 1,
        "agency": UTRECHT,
        "case_id": str(case_id),
        "subject_bsn": CITIZEN["bsn"],
        "objection_id": str(objection_id),
    }
    reply = service.withdraw_objection(command)
    record_id = consent_record_id(case_id, pseudonym(CITIZEN["bsn"]))
    assert reply == {"record_id": str(record_id), "objection_id": None}
    assert use_cases.calls == [
        (
            "withdraw_objection",
            WithdrawObjection(
                agency=UTRECHT, case_id=case_id, subject=pseudonym(CITIZEN["bsn"]), objection_id=objection_id
            ),
        )
    ]


def test_record_safety_override_hands_the_use_case_every_subject_as_a_pseudonym(service, use_cases):
    case_id, override_id = uuid.uuid4(), uuid.uuid4()
    review_on = date.today() + timedelta(days=14)
    command = override_command(
        str(case_id),
        [MOTHER["bsn"], DAUGHTER["bsn"]],
        override_id=str(override_id),
        deferral={"reason": "Vader mag het nog niet weten.", "review_on": review_on.isoformat()},
    )
    assert service.record_safety_override(command) == {"override_id": str(override_id), "status": "in_force"}
    [(use_case, given)] = use_cases.calls
    assert use_case == "record_safety_override"
    assert given == RecordSafetyOverride(
        agency=VEILIG_THUIS,
        override_id=override_id,
        case_id=case_id,
        subjects=(pseudonym(MOTHER["bsn"]), pseudonym(DAUGHTER["bsn"])),
        categories=("safety_concerns",),
        recipients=("raad-kinderbescherming",),
        ground="child_safety",
        reasons=command["reasons"],
        function="aandachtsfunctionaris",
        ends_on=date.fromisoformat(command["ends_on"]),
        explanation=command["explanation"],
        deferral=DeferralInput(reason="Vader mag het nog niet weten.", review_on=review_on),
    )
    assert MOTHER["bsn"] not in repr(given) and DAUGHTER["bsn"] not in repr(given)


def test_a_safety_override_with_an_unknown_field_is_refused_before_any_use_case_runs(service, use_cases):
    command = {**override_command(str(uuid.uuid4()), [MOTHER["bsn"]]), "recorded_by_name": "J. Jansen"}
    with pytest.raises(InvalidRequest) as error:
        service.record_safety_override(command)
    assert error.value.field == "recorded_by_name"
    assert "J. Jansen" not in str(error.value)
    assert use_cases.calls == []


def test_end_safety_override_answers_that_it_ended(service, use_cases):
    override_id = uuid.uuid4()
    command = {
        "schema_version": 1,
        "agency": VEILIG_THUIS,
        "override_id": str(override_id),
        "reason_code": "risk_resolved",
    }
    assert service.end_safety_override(command) == {"override_id": str(override_id), "status": "ended"}
    assert use_cases.calls == [
        (
            "end_safety_override",
            EndSafetyOverride(agency=VEILIG_THUIS, override_id=override_id, reason_code="risk_resolved"),
        )
    ]


def test_ending_an_unknown_override_is_the_use_cases_not_found(service, use_cases):
    use_cases.refuse = NotFound("unknown_override", "no safety override with this id", "override_id")
    command = {
        "schema_version": 1,
        "agency": VEILIG_THUIS,
        "override_id": str(uuid.uuid4()),
        "reason_code": "risk_resolved",
    }
    with pytest.raises(NotFound) as error:
        service.end_safety_override(command)
    assert error.value.code == "unknown_override"


def test_each_case_event_goes_to_the_use_cases_as_it_was_received(service, use_cases):
    case_id, subject, objection_id = uuid.uuid4(), "a" * 32, uuid.uuid4()
    utrecht = ParticipantRef(agency=UTRECHT, role="coordinator", legal_ground="statutory_task")
    registered = received(
        CaseRegistered(
            case_id=case_id,
            table="schuldhulptafel",
            purpose="debt_assistance",
            subjects=(SubjectRef(pseudonym=subject, role="citizen", minor=False, represented_by=None),),
            participants=(utrecht,),
            agreement=(AgreementRef(agency=UTRECHT, bring=("debts",), receive=("housing",)),),
            record_holder=UTRECHT,
            retention_class="consultation-short",
            contact_point=ContactPointRef(agency=UTRECHT, function="casusregisseur"),
            participation="attends",
            informed_beforehand=True,
            registered_by=UTRECHT,
            catalogue_version="test",
        )
    )
    added = received(
        ParticipantAdded(
            case_id=case_id,
            participant=ParticipantRef(agency="uwv", role="benefits_provider", legal_ground="statutory_task"),
            agreement=AgreementRef(agency="uwv", bring=("income",), receive=()),
            added_by=UTRECHT,
            catalogue_version="test",
        )
    )
    activated = received(CaseActivated(case_id=case_id, activated_by=UTRECHT))
    stopped = received(
        CaseStopped(case_id=case_id, subject=subject, objection_id=objection_id, status="stopped")
    )
    resumed = received(
        CaseResumed(case_id=case_id, subject=subject, objection_id=objection_id, status="active")
    )
    removed = received(ParticipantRemoved(case_id=case_id, agency="uwv", reason=None, removed_by=UTRECHT))
    closed = received(CaseClosed(case_id=case_id, outcome="help_arranged", closed_by=UTRECHT))
    service.handle_case_registered(registered)
    service.handle_participant_added(added)
    service.handle_case_activated(activated)
    service.handle_case_stopped(stopped)
    service.handle_case_resumed(resumed)
    service.handle_participant_removed(removed)
    service.handle_case_closed(closed)
    assert use_cases.calls == [
        ("record_case_event", registered),
        ("record_case_event", added),
        ("record_case_event", activated),
        ("record_case_event", stopped),
        ("record_case_event", resumed),
        ("record_case_event", removed),
        ("record_case_event", closed),
    ]


def test_a_purge_goes_to_the_use_cases_as_it_was_received(service, use_cases):
    case_id = uuid.uuid4()
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
            complete=True,
        ),
        source="retention",
    )
    service.handle_records_purged(purged)
    assert use_cases.calls == [("record_records_purged", purged)]


def test_health_answers_the_services_health_check(service):
    assert service.health() == {"service": "consent", "ok": True}
