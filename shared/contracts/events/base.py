"""The base of every event schema, and the shared parts of several events."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields

from shared.contracts.fields import AgencyId, Code, Pseudonym, SealedValue
from shared.contracts.registry import register

#: Every published event, by name; filled as the schema modules are imported.
EVENT_SCHEMAS: dict[str, type[EventSchema]] = {}


class EventSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    #: The event's name: the domain event class name, and the second part of its routing key.
    event_name = ""
    #: The service that publishes it.
    source = ""
    #: The field that carries the id of the aggregate the event belongs to.
    aggregate_id_field = ""
    version = 1

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.event_name:
            register(EVENT_SCHEMAS, cls.event_name, cls, "event")


class SubjectRef(Schema):
    class Meta:
        unknown = EXCLUDE

    pseudonym = Pseudonym(required=True)
    role = Code(required=True)
    minor = fields.Boolean(required=True)
    details = SealedValue(metadata={"description": "name, contact details, channel, language"})
    represented_by = Pseudonym(allow_none=True, load_default=None)


class ParticipantRef(Schema):
    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    role = Code(required=True)
    legal_ground = Code(required=True)


class AgreementRef(Schema):
    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    bring = fields.List(Code(), required=True)
    receive = fields.List(Code(), required=True)


class ContactPointRef(Schema):
    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    function = fields.String(required=True)
