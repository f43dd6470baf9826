"""What consent tells agencies about citizens' requests, in their inboxes (``keten.inbox``).

The agency that must answer a request hears of it with the citizen's words sealed to its own
key (as shared content is); for an objection or a consent withdrawal, which take effect at once,
every agency at the table hears of it. Reminders and the overdue notice carry no personal data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from uuid import UUID

from services.consent.domain import CitizenRequest
from shared.contracts.envelope import OutgoingMessage
from shared.contracts.inbox import inbox_message, inbox_message_id


@dataclass(frozen=True, kw_only=True)
class SealedText:
    """The citizen's words sealed to an agency's current key, or why they are not there
    (``no_key``: the agency has none; ``purged``: the citizen's records are gone)."""

    key_id: str | None
    sealed_text: str | None
    text_withheld: str | None = None


@dataclass(frozen=True, kw_only=True)
class CitizenRequestNotice(SealedText):
    """``CitizenRequestReceivedSchema``: a citizen's request, to the agency that must answer it
    or, for one that took effect at once, to every agency at the table."""

    request_id: UUID
    case_id: UUID
    kind: str
    agency: str
    answer_required: bool
    received_at: datetime
    due_on: date
    submitted_by: str = "subject"
    objection_to_agency: bool = False


@dataclass(frozen=True, kw_only=True)
class CitizenRequestDue:
    """``CitizenRequestDueSchema``: a request is due soon, or overdue."""

    request_id: UUID
    case_id: UUID
    kind: str
    due_on: date
    stage: str


def request_received(
    received: CitizenRequest.CitizenRequestReceived,  # type: ignore[name-defined]
    addressee: str,
    text: SealedText,
) -> OutgoingMessage:
    notice = CitizenRequestNotice(
        key_id=text.key_id,
        sealed_text=text.sealed_text,
        text_withheld=text.text_withheld,
        request_id=received.originator_id,
        case_id=received.case_id,
        kind=received.kind,
        agency=received.agency,
        answer_required=addressee == received.agency,
        received_at=received.received_at,
        due_on=received.due_on,
        submitted_by="legal_representative" if getattr(received, "representative", None) else "subject",
        objection_to_agency=received.kind == "objection" and bool(getattr(received, "agency_named", False)),
    )
    return inbox_message(
        addressee,
        "CitizenRequestReceived",
        asdict(notice),
        message_id=inbox_message_id("citizen-request", received.originator_id, addressee),
        occurred_at=received.timestamp,
    )


def request_due(
    event: CitizenRequest.CitizenRequestReminded | CitizenRequest.CitizenRequestOverdue,  # type: ignore[name-defined]
    stage: str,
) -> OutgoingMessage:
    due = CitizenRequestDue(
        request_id=event.originator_id,
        case_id=event.case_id,
        kind=event.kind,
        due_on=event.due_on,
        stage=stage,
    )
    return inbox_message(
        event.agency,
        "CitizenRequestDue",
        asdict(due),
        message_id=inbox_message_id("citizen-request", event.originator_id, stage, event.due_on),
        occurred_at=event.timestamp,
    )
