"""The base of every command schema, and how a service loads a command."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared import consistency
from shared.contracts.fields import AgencyId, CommandLoad
from shared.contracts.registry import register, schema_instance
from shared.contracts.typed import TypedSchema
from shared.errors import InvalidRequest

COMMAND_VERSION = 1
#: Where every answer carries its consistency token, and every command may send one back.
CONSISTENCY_FIELD = "consistency_token"

C = TypeVar("C")
L = TypeVar("L")

#: Every command agencies may send, by name; filled as the schema modules are imported.
COMMAND_SCHEMAS: dict[str, type[CommandSchema[Any]]] = {}


@dataclass(frozen=True, kw_only=True)
class Command:
    """What every command says besides its own fields: the agency that sends it. (Its schema
    version is checked as it is loaded, and then of no further use.)"""

    agency: str


class CommandSchema(TypedSchema[C]):
    class Meta:
        unknown = RAISE

    #: The command this schema describes, as it appears in routing keys and the AsyncAPI document.
    command_name = ""
    #: The service that handles it.
    service = ""
    #: What the platform answers when it carried the command out (``result`` of the reply).
    reply_schema: type[Schema] | None = None
    checked_only = frozenset({"schema_version", "consistency_token"})

    schema_version = fields.Integer(
        required=True,
        validate=validate.Equal(COMMAND_VERSION, error="unknown schema_version; this platform speaks 1"),
        metadata={"description": "version of the message schema"},
    )
    agency = AgencyId(required=True, metadata={"description": "the sending agency"})
    consistency_token = fields.String(
        load_default=None,
        validate=validate.Length(max=8192),
        metadata={
            "description": "the consistency_token of your latest answer: the service waits until "
            "it has processed what you wrote before (409 not_caught_up if it cannot in time)"
        },
    )

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.command_name:
            register(COMMAND_SCHEMAS, cls.command_name, cls, "command")


def load_command(
    schema_cls: type[TypedSchema[L]], payload: Any, pseudonymise: Callable[[str], str] | None = None
) -> L:
    """Validates a command and loads it into its dataclass; raises ``InvalidRequest`` naming the
    first field at fault. Every BSN in it is validated and replaced by ``pseudonymise(bsn)`` on
    the way (see ``fields.Bsn``): what comes out carries pseudonyms, never a BSN."""
    if not isinstance(payload, dict):
        raise InvalidRequest("invalid_message", "a command is a JSON object")
    if "schema_version" in payload and payload["schema_version"] != COMMAND_VERSION:
        raise InvalidRequest(
            "unknown_version",
            f"unknown schema_version; this platform speaks {COMMAND_VERSION}",
            "schema_version",
        )
    try:
        with CommandLoad({"pseudonymise": pseudonymise}) if pseudonymise else nullcontext():
            command = cast(L, schema_instance(schema_cls).load(payload))
    except ValidationError as exc:
        raise InvalidRequest.from_validation_error(exc) from None
    token = payload.get("consistency_token")
    recording = consistency.current()
    if token and recording is not None:
        recording.accept(token)  # 400 if forged or stale; waits, or 409 not_caught_up
    return command


def dump_reply(schema_cls: type[CommandSchema[Any]], result: object) -> dict[str, Any]:
    """The ``result`` of a use case as the command's reply (``reply_schema``): the message the
    service answers with."""
    if schema_cls.reply_schema is None:
        raise TypeError(f"{schema_cls.command_name} has no reply schema")
    reply = cast(dict[str, Any], schema_instance(schema_cls.reply_schema).dump(result))
    recording = consistency.current()
    if recording is not None and recording.written:  # a query that was sent none has none
        reply[CONSISTENCY_FIELD] = recording.token()
    return reply
