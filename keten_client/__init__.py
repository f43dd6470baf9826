"""A small client for agencies on Keten's message bus: send signed commands, await the answer,
read the inbox. See ``docs/agencies.md`` for the same exchange in plain AMQP terms."""

from keten_client.client import (
    AgencyClient,
    CommandFailed,
    Credentials,
    InboxMessage,
    command_headers,
    signed_http_headers,
)
from keten_client.protocol import KeyPair, open_sealed, sign

__all__ = [
    "AgencyClient",
    "CommandFailed",
    "Credentials",
    "InboxMessage",
    "KeyPair",
    "command_headers",
    "open_sealed",
    "sign",
    "signed_http_headers",
]
