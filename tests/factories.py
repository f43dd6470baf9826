"""Commands and events as agencies and services would send them."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from keten.demo import CITIZEN, register_case_command
from shared.config import Settings
from shared.contracts.commands import load_command
from shared.contracts.envelope import ReceivedEvent, decode_event, encode_event
from shared.contracts.typed import TypedSchema
from shared.pseudonym import Pseudonymiser

C = TypeVar("C")


def case_command(**changes: Any) -> dict[str, Any]:
    command = register_case_command(str(uuid.uuid4()))
    command.update(changes)
    return command


def consent_command(case_id: str, **changes: Any) -> dict[str, Any]:
    command = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "case_id": case_id,
        "subject_bsn": CITIZEN["bsn"],
        "purpose": "debt_assistance",
        "categories": ["housing", "debts"],
        "recipients": ["woningcorporatie-mitros"],
        "valid_until": (date.today() + timedelta(days=90)).isoformat(),
        "notice_version": "debt-2026-1",
        "notice_text": "Ik geef toestemming voor het delen van mijn huurachterstand.",
        "given_how": "in_person",
    }
    command.update(changes)
    return command


def share_command(case_id: str, **changes: Any) -> dict[str, Any]:
    command = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "request_id": str(uuid.uuid4()),
        "case_id": case_id,
        "subject_bsn": CITIZEN["bsn"],
        "to_agencies": ["kredietbank-utrecht"],
        "categories": ["debts"],
        "purpose": "debt_assistance",
        "content": "Drie maanden huurachterstand.",
        "form": "written",
    }
    command.update(changes)
    return command


def loaded(schema: type[TypedSchema[C]], command: dict[str, Any], settings: Settings) -> C:
    """A command as its service loads it: validated, each BSN replaced by its pseudonym under
    ``settings``' secret."""
    return load_command(schema, command, pseudonymise=Pseudonymiser(settings.pseudonym_secret))


def received(app: Any, position: int | None = None) -> list[ReceivedEvent]:
    """The events an application stored, as another service receives them from the bus."""
    events = []
    for notification in app.recorder.select_notifications(start=1, limit=1000):
        message = encode_event(
            app.mapper.to_domain_event(notification), app.name, position or notification.id
        )
        if message is not None:
            # With the trace context its message carries in a header, as a consumer takes it.
            traceparent = message.headers.get("traceparent")
            events.append(dataclasses.replace(decode_event(message.body), traceparent=traceparent))
    return events


def now() -> datetime:
    return datetime.now(UTC)


#: A made-up family for the youth-protection table (BSNs pass the eleven-test; none is real).
MOTHER = {"bsn": "111222333", "name": "Ilse Bakker"}
FATHER = {"bsn": "111222345", "name": "Ruben Bakker"}
DAUGHTER = {"bsn": "111222357", "name": "Noor Bakker"}
SON = {"bsn": "111222369", "name": "Daan Bakker"}


def family_case_command(**changes: Any) -> dict[str, Any]:
    """A case at the youth-protection table about a mother, a father and their two children."""

    def subject(person: dict[str, str], role: str, minor: bool = False) -> dict[str, Any]:
        entry: dict[str, Any] = {"bsn": person["bsn"], "role": role, "name": person["name"], "minor": minor}
        if minor:
            entry["represented_by_bsn"] = MOTHER["bsn"]
        return entry

    command = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "case_id": str(uuid.uuid4()),
        "table": "jeugdbeschermingstafel",
        "purpose": "youth_protection",
        "subjects": [
            subject(MOTHER, "citizen"),
            subject(FATHER, "parent"),
            subject(DAUGHTER, "child", minor=True),
            subject(SON, "child", minor=True),
        ],
        "participants": [
            {"agency": "gemeente-utrecht", "role": "coordinator", "legal_ground": "statutory_task"},
            {
                "agency": "raad-kinderbescherming",
                "role": "child_protection",
                "legal_ground": "legal_obligation",
            },
            {
                "agency": "veilig-thuis-utrecht",
                "role": "domestic_violence_expert",
                "legal_ground": "legal_obligation",
            },
            {"agency": "ggd-regio-utrecht", "role": "health_professional", "legal_ground": "statutory_task"},
            {"agency": "school-het-baken", "role": "school", "legal_ground": "statutory_task"},
        ],
        "record_holder": "gemeente-utrecht",
        "contact_point": {"agency": "gemeente-utrecht", "function": "casusregisseur jeugd"},
        "participation": "attends",
        "informed_beforehand": True,
    }
    command.update(changes)
    return command


def activate_command(case_id: str, agency: str = "gemeente-utrecht") -> dict[str, Any]:
    return {"schema_version": 1, "agency": agency, "case_id": case_id}


def objection_command(case_id: str, bsn: str = CITIZEN["bsn"], **changes: Any) -> dict[str, Any]:
    command = {
        "schema_version": 1,
        "agency": "gemeente-utrecht",
        "case_id": case_id,
        "subject_bsn": bsn,
        "reason": "Ik wil niet dat mijn situatie nog aan tafel wordt besproken.",
    }
    command.update(changes)
    return command


def override_command(case_id: str, subject_bsns: list[str], **changes: Any) -> dict[str, Any]:
    command = {
        "schema_version": 1,
        "agency": "veilig-thuis-utrecht",
        "case_id": case_id,
        "subject_bsns": subject_bsns,
        "categories": ["safety_concerns"],
        "recipients": ["raad-kinderbescherming"],
        "ground": "child_safety",
        "reasons": "Signalen van geweld in het gezin; de kinderen lopen gevaar.",
        "function": "aandachtsfunctionaris",
        "ends_on": (date.today() + timedelta(days=60)).isoformat(),
        "explanation": "Wij hebben uw zorgen over de veiligheid van de kinderen toch gedeeld, omdat...",
    }
    command.update(changes)
    return command
