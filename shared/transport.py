"""The embedded platform's in-process broker: kombu's memory transport, made fit for nameko.

Two fixes over ``memory://``: nameko reads ``message.properties['content_type']`` for RPC
replies (only py-amqp fills it, so RPC over plain ``memory://`` fails with a KeyError), and the
virtual transport polls every second by default, which makes each hop of a share take a second.
Registered as ``keten-memory://`` with state of its own, apart from any ``memory://`` user.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, memory, virtual

ALIAS = "keten-memory"


class Channel(memory.Channel):
    # Own class-level state, so queues are not shared with plain memory:// connections.
    events: defaultdict[str, set[Any]] = defaultdict(set)
    queues: dict[str, Any] = {}

    def prepare_message(
        self,
        body: Any,
        priority: int | None = None,
        content_type: str | None = None,
        content_encoding: str | None = None,
        headers: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        properties = dict(properties or {})
        properties.setdefault("content_type", content_type)
        properties.setdefault("content_encoding", content_encoding)
        return super().prepare_message(body, priority, content_type, content_encoding, headers, properties)


class Transport(memory.Transport):
    Channel = Channel
    global_state = virtual.BrokerState()
    polling_interval = 0.005
    driver_type = ALIAS
    driver_name = ALIAS


def register() -> None:
    """Makes ``keten-memory://`` known to kombu (idempotent; connects to nothing)."""
    TRANSPORT_ALIASES.setdefault(ALIAS, "shared.transport:Transport")


def reset() -> None:
    """Forgets every queue, exchange and binding (tests start each platform afresh)."""
    Channel.queues.clear()
    Channel.events.clear()
    Transport.global_state.clear()
