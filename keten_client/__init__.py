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
from keten_client.witness import ForkDetected, HeadWitness, UntrustedHead, http_consistency

__all__ = [
    "AgencyClient",
    "CommandFailed",
    "Credentials",
    "ForkDetected",
    "HeadWitness",
    "InboxMessage",
    "KeyPair",
    "UntrustedHead",
    "command_headers",
    "http_consistency",
    "open_sealed",
    "sign",
    "signed_http_headers",
]
