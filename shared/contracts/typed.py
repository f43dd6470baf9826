"""Schemas that load into frozen dataclasses: the typed values services work with.

A message schema names the dataclass it loads into as its type argument:
``class CaseClosedSchema(EventSchema[CaseClosed])`` loads a ``CaseClosed``. The dataclass sits
beside its schema, with one attribute per field (the field's name, not its ``data_key``), in the
same order; nested schemas load into their own dataclasses and sequences load as tuples, so a
loaded message is immutable all the way down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any, ClassVar, Generic, TypeVar, get_args

from marshmallow import Schema, post_load

from shared.sealed import Sealed

T = TypeVar("T")


class TypedSchema(Schema, Generic[T]):
    """A schema whose ``load`` returns a ``T`` (its ``loads_into``) instead of a dict."""

    #: The frozen dataclass a load makes; taken from the type argument of the schema's base.
    loads_into: ClassVar[type[Any] | None] = None
    #: Fields that are validated on load but are not part of the loaded value.
    checked_only: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            for argument in get_args(base):
                if isinstance(argument, type):
                    cls.loads_into = argument

    @post_load
    def _into_dataclass(self, data: dict[str, Any], **kwargs: Any) -> Any:
        if self.loads_into is None:
            return data
        values = {name: _frozen(value) for name, value in data.items() if name not in self.checked_only}
        return self.loads_into(**values)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def plain(value: Any) -> Any:
    """A loaded value as plain data for a JSON document (a read model's row): dataclasses as
    dicts, tuples as lists; ``Sealed`` values, ids and dates stay as they are."""
    if isinstance(value, Sealed):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in fields(value)}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    return value
