"""Field types of the message contract."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypedDict

from marshmallow import ValidationError, fields, validate
from marshmallow.experimental.context import Context

from shared.pseudonym import InvalidBsnError, is_pseudonym, validate_bsn
from shared.sealed import Sealed

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
CODE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
#: An identifier a professional types (a file number, a meeting's id, a notice's version):
#: letters, digits and . / - _ only, at least one digit, at most 64; no space, so no full name.
IDENTIFIER = re.compile(r"^(?=[^0-9]*[0-9])[A-Za-z0-9][A-Za-z0-9./_-]{0,63}$")


class Slug(fields.String):
    """An id from the catalogue (lower case, digits, dashes)."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("validate", validate.Regexp(SLUG, error="not a valid id"))
        super().__init__(**kwargs)


class AgencyId(Slug):
    """An agency's id from the catalogue."""


class TableId(Slug):
    """A consultation table's id from the catalogue."""


class Code(fields.String):
    """A code from the catalogue: category, purpose, ground, role, outcome."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("validate", validate.Regexp(CODE, error="not a valid code"))
        super().__init__(**kwargs)


class Identifier(fields.String):
    """An identifier typed by a professional that must stay readable (``IDENTIFIER``): it is
    kept in plain text, so it is held to a pattern no name fits in."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault(
            "validate",
            validate.Regexp(
                IDENTIFIER, error="an identifier: letters, digits and . / - _ only, with a digit"
            ),
        )
        super().__init__(**kwargs)


class LoadContext(TypedDict):
    """What loading a command needs besides the message (``load_command`` sets it)."""

    #: The platform's keyed pseudonym of a valid BSN (``shared.pseudonym.Pseudonymiser``).
    pseudonymise: Callable[[str], str]


#: The context of the load under way (a context variable: one per load, per green thread).
CommandLoad = Context[LoadContext]


class Bsn(fields.String):
    """A citizen service number: 9 digits passing the eleven-test. It loads as the subject's
    pseudonym: the BSN is validated and replaced here, at the boundary, and goes no further."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            bsn = validate_bsn(text)
        except InvalidBsnError as exc:
            raise ValidationError(str(exc)) from None
        context: LoadContext | None = CommandLoad.get(None)
        if context is None:
            raise TypeError("a message with a BSN is loaded with load_command(..., pseudonymise=...)")
        return context["pseudonymise"](bsn)


class Pseudonym(fields.String):
    """A data subject's pseudonym (32 hex characters)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not is_pseudonym(text):
            raise ValidationError("not a valid pseudonym")
        return text


class SealedValue(fields.Field):
    """Personal data, encrypted under the key of its case (and subject): ``{key_id, ciphertext}``.

    Only the platform's services hold the keys; once a case is purged no copy opens again.
    """

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Sealed):
            raise ValueError("personal data must be sealed before it is published")
        return value.to_json()

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Sealed:
        try:
            return Sealed.from_json(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class SealedText(fields.Field):
    """A short free text (a function, ...) sealed like ``SealedValue``. Events stored before it
    was sealed carry it as plain text: that loads and dumps as the text it is, so old events
    still replay and catch up; whoever keeps it seals it at once (``KetenApplication.reseal``)."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, Sealed):
            raise ValueError("personal data must be sealed before it is published")
        return value.to_json()

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Sealed | str:
        if isinstance(value, str):
            return value
        try:
            return Sealed.from_json(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
