"""What the platform addresses to one agency, on ``keten.inbox`` into that agency's inbox queue.

Nothing here is a platform event passed on as it is: each message is composed for its addressee
and holds only what that agency may know. The envelope names the message, the addressee and the
message it answers or the share it concerns; ``data`` follows the message's schema. Messages are
delivered at least once: an agency drops a ``message_id`` it has already handled.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from marshmallow import EXCLUDE, Schema, fields, validate

from shared.contracts.envelope import OutgoingMessage
from shared.contracts.fields import AgencyId, Code
from shared.contracts.registry import register, schema_instance
from shared.topology import INBOX_EXCHANGE, inbox_routing_key

INBOX_VERSION = 1
INBOX_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/inbox")

#: Every message an agency may find in its inbox, by name.
INBOX_SCHEMAS: dict[str, type[InboxSchema]] = {}


class InboxSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    #: The message's name: the second part of its routing key ``<agency>.<message>``.
    message_name = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.message_name:
            register(INBOX_SCHEMAS, cls.message_name, cls, "inbox message")


class InboxEnvelopeSchema(Schema):
    """The envelope of every inbox message."""

    schema_version = fields.Integer(required=True, validate=validate.Equal(INBOX_VERSION))
    message_id = fields.UUID(required=True, metadata={"description": "the same on redelivery"})
    message = fields.String(required=True, metadata={"description": "the message's name"})
    agency = AgencyId(required=True, metadata={"description": "the addressee"})
    occurred_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    correlation_id = fields.String(allow_none=True, load_default=None)
    traceparent = fields.String(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "W3C Trace Context of the processing the message comes from (also the "
            "AMQP header traceparent): its trace id is the one the agency's request sent, if it "
            "sent one",
            "example": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        },
    )
    data = fields.Dict(required=True, metadata={"description": "the message, by its schema"})


class ErrorSchema(Schema):
    """Why a command was not carried out. Written by the platform, never quoting the input."""

    code = fields.String(required=True, metadata={"example": "bad_signature"})
    message = fields.String(required=True)
    field = fields.String(allow_none=True, load_default=None, metadata={"example": "case_id"})
    retryable = fields.Boolean(
        load_default=False,
        metadata={
            "description": "true (unknown_case, case_not_active, not_caught_up): the platform was "
            "still catching up; send the same command again a moment later (a new message_id). "
            "Such an answer is not dead-lettered"
        },
    )


class CommandAcceptedSchema(InboxSchema):
    """A command was carried out; ``result`` follows the command's reply schema."""

    message_name = "CommandAccepted"

    in_reply_to = fields.String(required=True, metadata={"description": "the command's message_id"})
    command = fields.String(required=True, metadata={"example": "request_share"})
    result = fields.Dict(required=True)


class CommandRejectedSchema(InboxSchema):
    """A command was not carried out (malformed, unauthorised, refers to nothing known, ...).

    Nothing changed; the command went to the dead-letter queue with the same reason code.
    """

    message_name = "CommandRejected"

    in_reply_to = fields.String(allow_none=True, required=True, metadata={"description": "its message_id"})
    command = fields.String(allow_none=True, required=True)
    error = fields.Nested(ErrorSchema, required=True)


class SealedToYou(Schema):
    """Content sealed to the receiving agency's own key: nobody on the way can read it."""

    key_id = fields.String(
        allow_none=True, required=True, metadata={"description": "the key the content is sealed to"}
    )
    sealed_content = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "base64 HPKE ciphertext of {content, reference, subject: {role}} (and in"
            " ShareReceived contact_point: {function}); null when withheld, e.g. the agency had no"
            " key when it was sealed (content_withheld says why)"
        },
    )
    content_withheld = fields.String(allow_none=True, load_default=None, metadata={"example": "no_key"})


class InboxContactPointSchema(Schema):
    """The case's contact point for the citizen. Its function is free text a professional
    typed, so it travels in ``sealed_content`` (``contact_point.function``); ``function`` here
    stays for readers of the earlier version and is always null."""

    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    function = fields.Constant(
        None,
        metadata={"description": "always null: the function is in sealed_content"},
    )


class ShareReceivedSchema(SealedToYou, InboxSchema):
    """Data were shared with this agency. The content is sealed to the agency's encryption key
    (HPKE, see ``keten_client.protocol``): only the recipient opens it, nobody on the way."""

    message_name = "ShareReceived"

    share_id = fields.UUID(required=True)
    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    from_agency = AgencyId(required=True)
    categories = fields.List(Code(), required=True)
    purpose = Code(required=True)
    sender_ground = Code(required=True)
    recipient_ground = Code(required=True, metadata={"description": "your own ground to receive"})
    special_grounds = fields.Dict(keys=Code(), values=Code(), required=True)
    form = fields.String(required=True, metadata={"description": "written or oral"})
    direction = fields.String(required=True, metadata={"description": "push or pull"})
    contact_point = fields.Nested(InboxContactPointSchema, required=True)
    shared_at = fields.AwareDateTime(required=True)


class ShareCorrectedMessageSchema(SealedToYou, InboxSchema):
    """The content of a share made to this agency was corrected. Replace your copy of the
    share's content with the corrected content, sealed to your key as in ``ShareReceived``."""

    message_name = "ShareCorrected"

    share_id = fields.UUID(required=True, metadata={"description": "the ShareReceived it corrects"})
    correction_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    from_agency = AgencyId(required=True, metadata={"description": "who shared it with you"})
    corrected_by = AgencyId(required=True, metadata={"description": "the sender or the record holder"})
    reason_code = Code(
        required=True,
        metadata={"description": "correction_reasons in the catalogue", "example": "factual_error"},
    )
    corrected_at = fields.AwareDateTime(required=True)


class ShareErasureRequiredSchema(InboxSchema):
    """The platform purged the records of a share made to this agency: erase your own copy of
    what was shared (and of its corrections), unless a statutory duty of your own makes you keep
    it. Carries no personal data."""

    message_name = "ShareErasureRequired"

    share_id = fields.UUID(required=True, metadata={"description": "the ShareReceived to erase"})
    case_id = fields.UUID(required=True)
    reason = fields.String(
        required=True,
        validate=validate.OneOf(["erasure", "retention"]),
        metadata={"description": "erasure: the citizen's request was granted; retention: its time was up"},
    )
    purged_at = fields.AwareDateTime(required=True)


class CitizenRequestReceivedSchema(InboxSchema):
    """A citizen asked something about a case this agency takes part in. With ``answer_required``
    this agency must answer by ``due_on`` (``answer_citizen_request``, or extend it once with a
    reason, ``extend_citizen_request``); without, the request took effect at once (an objection
    stops the case for the citizen, a consent withdrawal ends their consents) and this is notice."""

    message_name = "CitizenRequestReceived"

    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    kind = Code(required=True, metadata={"example": "question"})
    agency = AgencyId(required=True, metadata={"description": "the agency that must answer"})
    answer_required = fields.Boolean(required=True, metadata={"description": "true: you must answer"})
    received_at = fields.AwareDateTime(required=True)
    due_on = fields.Date(required=True, metadata={"description": "the last day to answer (Europe/Amsterdam)"})
    key_id = fields.String(
        allow_none=True, required=True, metadata={"description": "the key it is sealed to"}
    )
    sealed_text = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "base64 HPKE ciphertext of {text, subject: {role}}; null without text"},
    )
    text_withheld = fields.String(allow_none=True, load_default=None, metadata={"example": "no_key"})
    submitted_by = fields.String(
        load_default="subject",
        validate=validate.OneOf(["subject", "legal_representative"]),
        metadata={
            "description": "legal_representative: a minor's legal representative submitted it for the minor"
        },
    )
    objection_to_agency = fields.Boolean(
        load_default=False,
        metadata={
            "description": "an objection to this agency's part only: in force at once (no shares about "
            "the subject from or to it); the agency answers it, and a refusal ends it"
        },
    )


class CitizenRequestDueSchema(InboxSchema):
    """A citizen's request this agency must answer is due soon (``reminder``) or past its
    deadline (``overdue``: the citizen was told, with the complaint route). Carries no personal data."""

    message_name = "CitizenRequestDue"

    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    kind = Code(required=True)
    due_on = fields.Date(required=True)
    stage = fields.String(required=True, validate=validate.OneOf(["reminder", "overdue"]))


def inbox_message(
    agency: str,
    name: str,
    data: dict[str, Any],
    message_id: str,
    correlation_id: str | None = None,
    occurred_at: datetime | None = None,
    traceparent: str | None = None,
) -> OutgoingMessage:
    """The message ``name`` for ``agency``'s inbox; ``message_id`` is stable across redelivery."""
    schema = INBOX_SCHEMAS[name]
    envelope = {
        "schema_version": INBOX_VERSION,
        "message_id": message_id,
        "message": name,
        "agency": agency,
        "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
        "correlation_id": correlation_id,
        "data": schema_instance(schema).dump(data),
    }
    headers = {"keten-message": name, "keten-agency": agency}
    if traceparent:  # absent without one: a message of an event stored before reads as it did
        envelope = {**envelope, "traceparent": traceparent}
        headers["traceparent"] = traceparent
    return OutgoingMessage(
        routing_key=inbox_routing_key(agency, name),
        body=json.dumps(envelope, separators=(",", ":"), default=str).encode(),
        headers=headers,
        message_id=message_id,
        exchange=INBOX_EXCHANGE,
        correlation_id=correlation_id,
    )


def inbox_message_id(*parts: object) -> str:
    return str(uuid5(INBOX_NAMESPACE, "/".join(str(part) for part in parts)))
