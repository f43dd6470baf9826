"""The catalogue as agencies read it: the answer to ``get_catalogue`` (AMQP) and to the signed
``GET /api/catalogue`` (HTTP).

An agency in any language learns from it the values the platform accepts and decides by: the
tables with who may bring and receive what, the purposes, the data categories, the legal grounds
and, per agency and purpose, the provision of law each ground rests on, every agency's contact
details and complaint route, the retention classes and every reason code with its text. It is
the catalogue the answering service runs on (``KETEN_CATALOGUE``), under its ``version``: the
version every decision records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields

from shared.catalogue import (
    Agency,
    Catalogue,
    Category,
    Change,
    ComplaintBody,
    LegalGround,
    Purpose,
    Reason,
    RetentionClass,
    Table,
)
from shared.reasons import RefusalReason, share_refusals


@dataclass(frozen=True, kw_only=True)
class TableLine:
    """What one participant of a table may bring to it and receive from it."""

    agency: str
    role: str
    bring: tuple[str, ...]
    receive: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PublishedTable:
    id: str
    name: str
    purposes: tuple[str, ...]
    retention_class: str
    participants: tuple[TableLine, ...]

    @classmethod
    def of(cls, table: Table) -> PublishedTable:
        return cls(
            id=table.id,
            name=table.name,
            purposes=table.purposes,
            retention_class=table.retention_class,
            participants=tuple(
                TableLine(agency=agency, role=line.role, bring=line.bring, receive=line.receive)
                for agency, line in table.participants.items()
            ),
        )


@dataclass(frozen=True, kw_only=True)
class PublishedCatalogue:
    """The whole catalogue in lists, ready to be dumped by ``CatalogueSchema``."""

    version: str
    changes: tuple[Change, ...]
    tables: tuple[PublishedTable, ...]
    purposes: tuple[Purpose, ...]
    categories: tuple[Category, ...]
    legal_grounds: tuple[LegalGround, ...]
    special_grounds: tuple[LegalGround, ...]
    agencies: tuple[Agency, ...]
    complaint_bodies: tuple[ComplaintBody, ...]
    retention_classes: tuple[RetentionClass, ...]
    share_refusals: tuple[RefusalReason, ...]
    legal_hold_reasons: tuple[Reason, ...]
    erasure_refusals: tuple[Reason, ...]
    safety_override_grounds: tuple[Reason, ...]
    safety_override_end_reasons: tuple[Reason, ...]
    correction_reasons: tuple[Reason, ...]

    @classmethod
    def of(cls, catalogue: Catalogue) -> PublishedCatalogue:
        return cls(
            version=catalogue.version,
            changes=catalogue.changes,
            tables=tuple(PublishedTable.of(table) for table in catalogue.tables.values()),
            purposes=tuple(catalogue.purposes.values()),
            categories=tuple(catalogue.categories.values()),
            legal_grounds=tuple(catalogue.legal_grounds.values()),
            special_grounds=tuple(catalogue.special_grounds.values()),
            agencies=tuple(catalogue.agencies.values()),
            complaint_bodies=tuple(catalogue.complaint_bodies.values()),
            retention_classes=tuple(catalogue.retention_classes.values()),
            share_refusals=tuple(share_refusals().values()),
            legal_hold_reasons=tuple(catalogue.legal_hold_reasons.values()),
            erasure_refusals=tuple(catalogue.erasure_refusals.values()),
            safety_override_grounds=tuple(catalogue.safety_override_grounds.values()),
            safety_override_end_reasons=tuple(catalogue.safety_override_end_reasons.values()),
            correction_reasons=tuple(catalogue.correction_reasons.values()),
        )


class LabelSchema(Schema):
    nl = fields.String(required=True)
    en = fields.String(required=True)


class ChangeSchema(Schema):
    version = fields.String(required=True)
    note = fields.String(required=True)


class TableLineSchema(Schema):
    agency = fields.String(required=True)
    role = fields.String(required=True)
    bring = fields.List(fields.String(), required=True, metadata={"description": "categories it may bring"})
    receive = fields.List(
        fields.String(), required=True, metadata={"description": "categories it may receive"}
    )


class TableSchema(Schema):
    id = fields.String(required=True, metadata={"example": "vroegsignalering-schulden"})
    name = fields.String(required=True)
    purposes = fields.List(fields.String(), required=True)
    retention_class = fields.String(required=True)
    participants = fields.List(
        fields.Nested(TableLineSchema),
        required=True,
        metadata={"description": "the standard data agreement: who may bring and receive what"},
    )


class CodedSchema(Schema):
    code = fields.String(required=True)
    label = fields.Nested(LabelSchema, required=True)


class CategorySchema(CodedSchema):
    kind = fields.String(
        required=True,
        metadata={
            "description": "ordinary | special (health...) | criminal | bsn | conclusion; special, "
            "criminal and bsn need a special ground of the sender's own (special_grounds of a "
            "share request)"
        },
    )
    note = fields.String(required=True)


class LegalGroundSchema(CodedSchema):
    article = fields.String(required=True, metadata={"description": "the GDPR (or UAVG) article"})


class ProvisionSchema(Schema):
    law = fields.String(required=True, metadata={"example": "Wet gemeentelijke schuldhulpverlening"})
    article = fields.String(required=True, metadata={"example": "art. 2 en 3"})
    citation = fields.String(required=True, metadata={"description": "law and article in one line"})
    note = fields.String(required=True, metadata={"description": "what is uncertain or also applies"})


class AgencyGroundSchema(Schema):
    purpose = fields.String(required=True)
    ground = fields.String(required=True, metadata={"description": "a legal_grounds code"})
    provision = fields.Nested(ProvisionSchema, required=True)


class AgencySpecialGroundSchema(Schema):
    ground = fields.String(required=True, metadata={"description": "a special_grounds code"})
    provision = fields.Nested(ProvisionSchema, required=True)


class ContactDetailsSchema(Schema):
    phone = fields.String(required=True)
    email = fields.String(required=True)
    postal_address = fields.String(required=True)
    website = fields.String(required=True)
    opening_hours = fields.Nested(LabelSchema, allow_none=True, required=True)


class ComplaintBodySchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    handles = fields.Nested(LabelSchema, required=True)
    contact = fields.Nested(ContactDetailsSchema, allow_none=True, required=True)
    note = fields.String(required=True)


class ComplaintRouteSchema(Schema):
    procedure = fields.Nested(LabelSchema, required=True, metadata={"description": "its own procedure"})
    desk = fields.Nested(ContactDetailsSchema, required=True)
    escalation = fields.Pluck(
        ComplaintBodySchema, "code", many=True, required=True, metadata={"description": "then, in order"}
    )
    privacy = fields.Pluck(ComplaintBodySchema, "code", required=True)
    note = fields.String(required=True)


class AgencySchema(Schema):
    id = fields.String(required=True, metadata={"example": "gemeente-utrecht"})
    name = fields.String(required=True)
    type = fields.String(required=True)
    citizen_depends_on_it = fields.Boolean(
        required=True, metadata={"description": "then consent is no valid ground for it"}
    )
    grounds = fields.List(fields.Nested(AgencyGroundSchema), required=True)
    special_grounds = fields.List(
        fields.Nested(AgencySpecialGroundSchema), attribute="special", required=True
    )
    contact = fields.Nested(ContactDetailsSchema, required=True)
    complaints = fields.Nested(ComplaintRouteSchema, required=True)


class RetentionRuleSchema(Schema):
    record_kind = fields.String(required=True)
    keep = fields.Method("_keep", required=True, metadata={"description": "ISO-8601 period or 'forever'"})
    counted_from = fields.String(required=True)

    def _keep(self, rule: Any) -> str:
        return rule.keep.isoformat() if rule.keep else "forever"


class RetentionVersionSchema(Schema):
    version = fields.Integer(required=True)
    in_force_from = fields.Date(required=True)
    rules = fields.Method("_rules", required=True)

    def _rules(self, version: Any) -> list[dict[str, Any]]:
        return [RetentionRuleSchema().dump(rule) for rule in version.rules.values()]


class RetentionClassSchema(CodedSchema):
    versions = fields.List(fields.Nested(RetentionVersionSchema), required=True)


class ShareRefusalSchema(Schema):
    code = fields.String(required=True, metadata={"example": "no_valid_consent"})
    visible_to_subject = fields.Boolean(required=True)
    nl = fields.String(required=True)
    en = fields.String(required=True)


class ReasonSchema(CodedSchema):
    article = fields.String(required=True)


class CatalogueSchema(Schema):
    """The catalogue the platform decides by: tables with who may bring and receive what,
    purposes, categories, grounds with the provision of law each agency's ground rests on,
    contact details and complaint routes, retention classes and reason codes."""

    version = fields.String(required=True, metadata={"description": "recorded with every decision"})
    changes = fields.List(fields.Nested(ChangeSchema), required=True)
    tables = fields.List(fields.Nested(TableSchema), required=True)
    purposes = fields.List(fields.Nested(CodedSchema), required=True)
    categories = fields.List(fields.Nested(CategorySchema), required=True)
    legal_grounds = fields.List(fields.Nested(LegalGroundSchema), required=True)
    special_grounds = fields.List(fields.Nested(LegalGroundSchema), required=True)
    agencies = fields.List(fields.Nested(AgencySchema), required=True)
    complaint_bodies = fields.List(fields.Nested(ComplaintBodySchema), required=True)
    retention_classes = fields.List(fields.Nested(RetentionClassSchema), required=True)
    share_refusals = fields.List(
        fields.Nested(ShareRefusalSchema),
        required=True,
        metadata={"description": "every reason_code a share decision can give, with its text"},
    )
    legal_hold_reasons = fields.List(fields.Nested(ReasonSchema), required=True)
    erasure_refusals = fields.List(fields.Nested(ReasonSchema), required=True)
    safety_override_grounds = fields.List(fields.Nested(ReasonSchema), required=True)
    safety_override_end_reasons = fields.List(fields.Nested(ReasonSchema), required=True)
    correction_reasons = fields.List(fields.Nested(ReasonSchema), required=True)
