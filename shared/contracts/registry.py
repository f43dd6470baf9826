"""Registering a message schema under its name, once."""

from __future__ import annotations

from typing import Any


def register(registry: dict[str, Any], name: str, schema: type, kind: str) -> None:
    """Adds ``schema`` as the schema of ``name``; a second schema for one name is a bug."""
    if name in registry:
        raise TypeError(f"two schemas for {kind} {name}")
    registry[name] = schema
