"""Registering a message schema under its name, once."""

from __future__ import annotations

from functools import cache
from typing import Any

from marshmallow import Schema


def register(registry: dict[str, Any], name: str, schema: type, kind: str) -> None:
    """Adds ``schema`` as the schema of ``name``; a second schema for one name is a bug."""
    if name in registry:
        raise TypeError(f"two schemas for {kind} {name}")
    registry[name] = schema


@cache
def schema_instance(schema: type[Schema]) -> Schema:
    """One instance per schema class, reused: building a schema copies every field (nested ones
    too), which cost more than loading a message. Loading and dumping keep no state in it."""
    return schema()
