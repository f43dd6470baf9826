"""Commands and events as agencies and services would send them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.demo import CITIZEN, register_case_command
from shared.contracts.envelope import ReceivedEvent, decode_event, encode_event


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


def received(app: Any, position: int | None = None) -> list[ReceivedEvent]:
    """The events an application stored, as another service receives them from the bus."""
    events = []
    for notification in app.recorder.select_notifications(start=1, limit=1000):
        message = encode_event(
            app.mapper.to_domain_event(notification), app.name, position or notification.id
        )
        if message is not None:
            events.append(decode_event(message.body))
    return events


def now() -> datetime:
    return datetime.now(UTC)
