"""Events published by data_sharing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from marshmallow import fields, validate

from shared.contracts.events.base import ContactPointRef, ContactPointRefSchema, EventSchema
from shared.contracts.fields import AgencyId, Code, Pseudonym, SealedValue
from shared.contracts.typed import TypedSchema
from shared.sealed import Sealed


@dataclass(frozen=True, kw_only=True)
class ProvisionRef:
    """The provision of law a ground rests on: the national law and its article."""

    law: str
    article: str

    @property
    def citation(self) -> str:
        return f"{self.law}, {self.article}"


class ProvisionRefSchema(TypedSchema[ProvisionRef]):
    law = fields.String(required=True, metadata={"example": "Wet gemeentelijke schuldhulpverlening"})
    article = fields.String(required=True, metadata={"example": "art. 2 en 3"})


@dataclass(frozen=True, kw_only=True)
class DataShared:
    share_id: UUID
    request_id: UUID
    case_id: UUID
    subject: str
    from_agency: str
    to_agency: str
    categories: tuple[str, ...]
    purpose: str
    sender_ground: str
    recipient_ground: str
    special_grounds: Mapping[str, str]
    form: str
    meeting_id: str | None
    content: Sealed | None = None
    direction: str
    override_id: UUID | None
    contact_point: ContactPointRef
    catalogue_version: str
    correlation_id: str | None
    provision: ProvisionRef | None = None
    special_provisions: Mapping[str, ProvisionRef] = field(default_factory=dict)
    also_about: tuple[str, ...] = ()

    @property
    def subjects(self) -> tuple[str, ...]:
        """Everyone the shared content is about: the subject, then those it is also about."""
        return (self.subject, *self.also_about)


class DataSharedSchema(EventSchema[DataShared]):
    event_name, source, aggregate_id_field = "DataShared", "data_sharing", "share_id"

    share_id = fields.UUID(required=True)
    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    from_agency = AgencyId(required=True)
    to_agency = AgencyId(required=True)
    categories = fields.List(Code(), required=True)
    purpose = Code(required=True)
    sender_ground = Code(required=True)
    recipient_ground = Code(required=True)
    special_grounds = fields.Dict(keys=Code(), values=Code(), required=True)
    form = fields.String(required=True, metadata={"description": "written or oral"})
    meeting_id = fields.String(allow_none=True, load_default=None)
    content = SealedValue(metadata={"description": "what was shared, sealed under the subject's key"})
    direction = fields.String(required=True, metadata={"description": "push or pull"})
    override_id = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "the safety override under which it was shared despite an objection"},
    )
    contact_point = fields.Nested(ContactPointRefSchema, required=True)
    catalogue_version = fields.String(required=True)
    correlation_id = fields.String(allow_none=True, load_default=None)
    provision = fields.Nested(
        ProvisionRefSchema,
        allow_none=True,
        load_default=None,
        metadata={"description": "the law and article the sender's ground for the purpose rests on"},
    )
    special_provisions = fields.Dict(
        keys=Code(),
        values=fields.Nested(ProvisionRefSchema),
        load_default=dict,
        metadata={"description": "per special category, the law and article of the special ground relied on"},
    )
    also_about = fields.List(
        Pseudonym(),
        load_default=list,
        metadata={"description": "the other subjects of the case the content is also about; each is told"},
    )


@dataclass(frozen=True, kw_only=True)
class ShareRefused:
    share_id: UUID
    request_id: UUID
    case_id: UUID
    subject: str
    from_agency: str
    to_agency: str
    categories: tuple[str, ...]
    purpose: str
    reason_code: str
    reason: str
    visible_to_subject: bool
    direction: str
    reason_details: Mapping[str, str] = field(default_factory=dict)
    catalogue_version: str
    correlation_id: str | None
    part_of: UUID | None = None
    provision: ProvisionRef | None = None


class ShareRefusedSchema(EventSchema[ShareRefused]):
    event_name, source, aggregate_id_field = "ShareRefused", "data_sharing", "share_id"

    share_id = fields.UUID(required=True)
    request_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    from_agency = AgencyId(required=True)
    to_agency = AgencyId(required=True)
    categories = fields.List(Code(), required=True)
    purpose = Code(required=True)
    reason_code = Code(required=True)
    reason = fields.String(required=True, metadata={"description": "plain-language reason"})
    visible_to_subject = fields.Boolean(
        required=True,
        metadata={"description": "shown in the subject's overview (e.g. refused under an objection)"},
    )
    direction = fields.String(load_default="push", metadata={"description": "push or pull"})
    reason_details = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        load_default=dict,
        metadata={"description": "what the reason names (agency ids, category codes), to render it"},
    )
    catalogue_version = fields.String(required=True)
    correlation_id = fields.String(allow_none=True, load_default=None)
    part_of = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "when the request was decided per category: the recipient's first decision on "
            "it (the share of the allowed categories, or the first refusal) this refusal is part of"
        },
    )
    provision = fields.Nested(
        ProvisionRefSchema,
        allow_none=True,
        load_default=None,
        metadata={
            "description": "the law and article the sender's ground rests on (none: sender not at the table)"
        },
    )


@dataclass(frozen=True, kw_only=True)
class ShareCorrected:
    share_id: UUID
    correction_id: UUID
    case_id: UUID
    subject: str
    from_agency: str
    to_agency: str
    corrected_by: str
    reason_code: str
    content: Sealed | None = None
    correlation_id: str | None
    categories: tuple[str, ...] = ()
    in_answer_to: UUID | None = None
    answer: str | None = None
    answer_reason: Sealed | None = None


class ShareCorrectedSchema(EventSchema[ShareCorrected]):
    """The content of a share was corrected; sealed under the subject's key like the content of
    ``DataShared``, so the purge of the share's records shreds the correction too."""

    event_name, source, aggregate_id_field = "ShareCorrected", "data_sharing", "share_id"

    share_id = fields.UUID(required=True)
    correction_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    subject = Pseudonym(required=True)
    from_agency = AgencyId(required=True, metadata={"description": "the share's sender"})
    to_agency = AgencyId(required=True, metadata={"description": "the share's recipient, who is told"})
    corrected_by = AgencyId(required=True, metadata={"description": "the sender or the record holder"})
    reason_code = Code(required=True, metadata={"description": "one of correction_reasons in the catalogue"})
    content = SealedValue(metadata={"description": "the corrected content, sealed under the subject's key"})
    correlation_id = fields.String(allow_none=True, load_default=None)
    categories = fields.List(
        Code(),
        load_default=(),
        metadata={
            "description": "the share's data categories (empty: a correction stored before they were named)"
        },
    )
    in_answer_to = fields.UUID(
        allow_none=True,
        load_default=None,
        metadata={"description": "the citizen's correction request (consent) this correction was run for"},
    )
    answer = fields.String(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "with in_answer_to: granted, partly_granted or pending (request stays open)"
        },
    )
    answer_reason = SealedValue(
        metadata={"description": "partly_granted: {nl, en}, what was not corrected and why (subject key)"}
    )


@dataclass(frozen=True, kw_only=True)
class ErasurePassedOn:
    share_id: UUID
    case_id: UUID
    recipients: tuple[str, ...]
    reason: str
    purged_at: datetime


class ErasurePassedOnSchema(EventSchema[ErasurePassedOn]):
    """The share's records were purged and its recipients were told to erase their own copy."""

    event_name, source, aggregate_id_field = "ErasurePassedOn", "data_sharing", "share_id"

    share_id = fields.UUID(required=True)
    case_id = fields.UUID(required=True)
    recipients = fields.List(AgencyId(), required=True)
    reason = fields.String(required=True, validate=validate.OneOf(["retention", "erasure"]))
    purged_at = fields.AwareDateTime(required=True)
