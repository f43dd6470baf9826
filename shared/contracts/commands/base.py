"""The base of every command schema, and how a service loads a command."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.contracts.fields import AgencyId
from shared.contracts.registry import register, schema_instance
from shared.errors import InvalidRequest

COMMAND_VERSION = 1

#: Every command agencies may send, by name; filled as the schema modules are imported.
COMMAND_SCHEMAS: dict[str, type[CommandSchema]] = {}


class CommandSchema(Schema):
    class Meta:
        unknown = RAISE

    #: The command this schema describes, as it appears in routing keys and the AsyncAPI document.
    command_name = ""
    #: The service that handles it.
    service = ""
    #: What the platform answers when it carried the command out (``result`` of the reply).
    reply_schema: type[Schema] | None = None

    schema_version = fields.Integer(
        required=True,
        validate=validate.Equal(COMMAND_VERSION, error="unknown schema_version; this platform speaks 1"),
        metadata={"description": "version of the message schema"},
    )
    agency = AgencyId(required=True, metadata={"description": "the sending agency"})

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.command_name:
            register(COMMAND_SCHEMAS, cls.command_name, cls, "command")


def load_command(schema_cls: type[Schema], payload: Any) -> dict[str, Any]:
    """Validates a command; raises ``InvalidRequest`` naming the first field at fault."""
    if not isinstance(payload, dict):
        raise InvalidRequest("invalid_message", "a command is a JSON object")
    if "schema_version" in payload and payload["schema_version"] != COMMAND_VERSION:
        raise InvalidRequest(
            "unknown_version",
            f"unknown schema_version; this platform speaks {COMMAND_VERSION}",
            "schema_version",
        )
    try:
        return schema_instance(schema_cls).load(payload)
    except ValidationError as exc:
        raise InvalidRequest.from_validation_error(exc) from None
