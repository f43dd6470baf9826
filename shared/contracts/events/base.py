"""The base of every event schema, and the shared parts of several events.

Each event schema loads into a frozen dataclass named after the event, defined beside it
(``CaseRegisteredSchema`` loads a ``CaseRegistered``); see ``shared.contracts.typed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from marshmallow import EXCLUDE, fields

from shared.contracts.fields import AgencyId, Code, Pseudonym, SealedText, SealedValue
from shared.contracts.registry import register
from shared.contracts.typed import TypedSchema
from shared.sealed import Sealed

E = TypeVar("E")

#: Every published event, by name; filled as the schema modules are imported.
EVENT_SCHEMAS: dict[str, type[EventSchema[Any]]] = {}


class EventSchema(TypedSchema[E]):
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
            if cls.loads_into is None or cls.loads_into.__name__ != cls.event_name:
                raise TypeError(f"the schema of {cls.event_name} must load into a {cls.event_name}")
            register(EVENT_SCHEMAS, cls.event_name, cls, "event")


@dataclass(frozen=True, kw_only=True)
class SubjectRef:
    pseudonym: str
    role: str
    minor: bool
    details: Sealed | None = None
    represented_by: str | None


class SubjectRefSchema(TypedSchema[SubjectRef]):
    class Meta:
        unknown = EXCLUDE

    pseudonym = Pseudonym(required=True)
    role = Code(required=True)
    minor = fields.Boolean(required=True)
    details = SealedValue(metadata={"description": "name, contact details, channel, language"})
    represented_by = Pseudonym(allow_none=True, load_default=None)


@dataclass(frozen=True, kw_only=True)
class ParticipantRef:
    agency: str
    role: str
    legal_ground: str


class ParticipantRefSchema(TypedSchema[ParticipantRef]):
    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    role = Code(required=True)
    legal_ground = Code(required=True)


@dataclass(frozen=True, kw_only=True)
class AgreementRef:
    agency: str
    bring: tuple[str, ...]
    receive: tuple[str, ...]


class AgreementRefSchema(TypedSchema[AgreementRef]):
    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    bring = fields.List(Code(), required=True)
    receive = fields.List(Code(), required=True)


@dataclass(frozen=True, kw_only=True)
class ContactPointRef:
    agency: str
    #: Plain text only in events stored before the function was sealed.
    function: Sealed | str | None


class ContactPointRefSchema(TypedSchema[ContactPointRef]):
    class Meta:
        unknown = EXCLUDE

    agency = AgencyId(required=True)
    function = SealedText(
        required=True,
        metadata={
            "description": "the function at the agency whom the citizen asks, sealed (case key in"
            " CaseRegistered, subject key in DataShared); plain text in events stored before it was"
        },
    )
