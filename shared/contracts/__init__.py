"""The message contract: one marshmallow schema per message, shared by every service."""

from shared.contracts.commands import COMMAND_SCHEMAS, CommandSchema, load_command
from shared.contracts.envelope import OutgoingMessage, ReceivedEvent, decode_event, encode_event
from shared.contracts.events import EVENT_SCHEMAS, EventSchema

__all__ = [
    "COMMAND_SCHEMAS",
    "EVENT_SCHEMAS",
    "CommandSchema",
    "EventSchema",
    "OutgoingMessage",
    "ReceivedEvent",
    "decode_event",
    "encode_event",
    "load_command",
]
