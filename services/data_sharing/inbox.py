"""What data_sharing tells the agencies it shared with, in their inboxes (``keten.inbox``).

Each message is composed from one of ``Share``'s events as a typed payload with the fields of
its schema in ``shared.contracts.inbox`` (``ShareReceived``, ``ShareCorrectedMessage``,
``ShareErasureRequired``), and becomes JSON only here, at the wire. Content goes sealed to the
recipient's own key (``SealedToRecipient``), or is withheld with the reason why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from uuid import UUID

from services.data_sharing.domain import Share
from shared.contracts.envelope import OutgoingMessage
from shared.contracts.inbox import inbox_message, inbox_message_id
from shared.ldv import traceparent_of


@dataclass(frozen=True, kw_only=True)
class SealedToRecipient:
    """A share's content sealed to the recipient's current key, or why it is withheld
    (``no_key``: the agency had none; ``purged``: the platform's records are gone)."""

    key_id: str | None
    sealed_content: str | None
    content_withheld: str | None = None


@dataclass(frozen=True)
class ContactPointAgency:
    """The case's contact point as the inbox names it in the open: its agency (the function,
    free text, travels sealed to the recipient)."""

    agency: str


@dataclass(frozen=True, kw_only=True)
class ShareReceived(SealedToRecipient):
    """``ShareReceivedSchema``: data were shared with the agency."""

    share_id: UUID
    request_id: UUID
    case_id: UUID
    from_agency: str
    categories: tuple[str, ...]
    purpose: str
    sender_ground: str
    recipient_ground: str
    special_grounds: Mapping[str, str]
    form: str
    direction: str
    contact_point: ContactPointAgency
    shared_at: datetime


@dataclass(frozen=True, kw_only=True)
class ShareCorrectedMessage(SealedToRecipient):
    """``ShareCorrectedMessageSchema``: the content of a share made to the agency was corrected."""

    share_id: UUID
    correction_id: UUID
    case_id: UUID
    from_agency: str
    corrected_by: str
    reason_code: str
    corrected_at: datetime


@dataclass(frozen=True, kw_only=True)
class ShareErasureRequired:
    """``ShareErasureRequiredSchema``: the platform purged a share's records; nothing personal."""

    share_id: UUID
    case_id: UUID
    reason: str
    purged_at: datetime


def share_received(shared: Share.DataShared, content: SealedToRecipient) -> OutgoingMessage:
    """Tells the recipient of a share what was shared with it, why and on what ground."""
    payload = ShareReceived(
        key_id=content.key_id,
        sealed_content=content.sealed_content,
        content_withheld=content.content_withheld,
        share_id=shared.originator_id,
        request_id=shared.request_id,
        case_id=shared.case_id,
        from_agency=shared.from_agency,
        categories=tuple(shared.categories),
        purpose=shared.purpose,
        sender_ground=shared.sender_ground,
        recipient_ground=shared.recipient_ground,
        special_grounds=shared.special_grounds,
        form=shared.form,
        direction=shared.direction,
        contact_point=ContactPointAgency(shared.contact.agency),
        shared_at=shared.timestamp,
    )
    return _addressed(
        shared.to_agency,
        "ShareReceived",
        payload,
        message_id=inbox_message_id("share", shared.originator_id),
        correlation_id=shared.correlation_id,
        occurred_at=shared.timestamp,
        traceparent=traceparent_of(shared),
    )


def share_corrected(corrected: Share.ShareCorrected, content: SealedToRecipient) -> OutgoingMessage:
    """Tells the recipient of a share its corrected content."""
    payload = ShareCorrectedMessage(
        key_id=content.key_id,
        sealed_content=content.sealed_content,
        content_withheld=content.content_withheld,
        share_id=corrected.originator_id,
        correction_id=corrected.correction_id,
        case_id=corrected.case_id,
        from_agency=corrected.from_agency,
        corrected_by=corrected.corrected_by,
        reason_code=corrected.reason_code,
        corrected_at=corrected.timestamp,
    )
    return _addressed(
        corrected.to_agency,
        "ShareCorrected",
        payload,
        message_id=inbox_message_id("correction", corrected.originator_id, corrected.correction_id),
        correlation_id=corrected.correlation_id,
        occurred_at=corrected.timestamp,
        traceparent=traceparent_of(corrected),
    )


def erasures_required(passed_on: Share.ErasurePassedOn) -> list[OutgoingMessage]:
    """Tells each recipient of a purged share to erase its copy."""
    payload = ShareErasureRequired(
        share_id=passed_on.originator_id,
        case_id=passed_on.case_id,
        reason=passed_on.reason,
        purged_at=passed_on.purged_at,
    )
    return [
        _addressed(
            recipient,
            "ShareErasureRequired",
            payload,
            message_id=inbox_message_id("erasure", passed_on.originator_id, recipient),
            correlation_id=None,
            occurred_at=passed_on.timestamp,
            traceparent=traceparent_of(passed_on),
        )
        for recipient in passed_on.recipients
    ]


def _addressed(
    agency: str,
    name: str,
    payload: SealedToRecipient | ShareErasureRequired,
    *,
    message_id: str,
    correlation_id: str | None,
    occurred_at: datetime,
    traceparent: str | None,
) -> OutgoingMessage:
    # The payload becomes plain data here, at the wire: the message's schema dumps it.
    return inbox_message(
        agency,
        name,
        asdict(payload),
        message_id=message_id,
        correlation_id=correlation_id,
        occurred_at=occurred_at,
        traceparent=traceparent,
    )
