"""Errors a caller can act on: a machine-readable code, the field at fault, a plain message.

They cross nameko RPC as themselves (``deserialize_to_instance``), so the gateway maps them to
HTTP status codes and a command consumer to an error reply. Messages are written by us and
never quote the input: they may reach logs, dead-letter headers and other agencies.

A service's domain refuses with a ``DomainError`` of its own, which names the kind of refusal;
``domain_refusals()`` turns it into the platform's error of that kind at the application's edge.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any, ClassVar

from marshmallow import ValidationError
from nameko.exceptions import deserialize_to_instance

#: Codes that ask the caller to send the same command again shortly: the platform was still
#: catching up (events in flight). Answered with ``retryable: true``, never dead-lettered.
RETRYABLE = frozenset({"unknown_case", "case_not_active", "not_caught_up"})


@deserialize_to_instance
class KetenError(Exception):
    status = 400

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(code, message, field)

    @property
    def code(self) -> str:
        return str(self.args[0])

    @property
    def message(self) -> str:
        return str(self.args[1])

    @property
    def field(self) -> str | None:
        return self.args[2]

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        if self.retryable:
            error["retryable"] = True
        return error

    @property
    def retryable(self) -> bool:
        """Whether the same command, sent again a moment later, may well be carried out."""
        return self.code in RETRYABLE

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" + (f" (field {self.field})" if self.field else "")


@deserialize_to_instance
class InvalidRequest(KetenError):
    """Malformed: not JSON, fails its schema, unknown version or category, bad id."""

    status = 400

    @classmethod
    def from_validation_error(cls, error: ValidationError) -> InvalidRequest:
        field, message = first_error(error.messages)
        return cls("invalid_field" if field else "invalid_message", message, field)


@deserialize_to_instance
class NotAuthorised(KetenError):
    """The sender may not do this (bad signature, not a participant of the case)."""

    status = 403


@deserialize_to_instance
class NotFound(KetenError):
    status = 404


@deserialize_to_instance
class ServiceUnavailable(KetenError):
    """A service did not answer in time or its store is unreachable; try again later."""

    status = 503


@deserialize_to_instance
class Conflict(KetenError):
    """The request contradicts what is on record (e.g. a case that is closed)."""

    status = 409


class Refusal(Enum):
    """The kind of a domain's refusal; the platform answers each with its own error."""

    INVALID = "invalid"  # 400: the request breaks a rule whatever the record says
    NOT_AUTHORISED = "not_authorised"  # 403: not this agency
    NOT_FOUND = "not_found"  # 404: no such thing on record
    CONFLICT = "conflict"  # 409: the record as it stands does not allow it


PLATFORM_ERRORS: dict[Refusal, type[KetenError]] = {
    Refusal.INVALID: InvalidRequest,
    Refusal.NOT_AUTHORISED: NotAuthorised,
    Refusal.NOT_FOUND: NotFound,
    Refusal.CONFLICT: Conflict,
}


class DomainError(Exception):
    """A rule of a service's domain refused a change.

    Each domain has one subclass (``CaseError``, ``ConsentError``, ...) and one subclass of that
    per rule, which sets ``code`` (stable, machine-readable) and ``refusal`` (its kind). The
    message is for a professional and, like every message here, never quotes the input;
    ``field`` names the input at fault.
    """

    code: ClassVar[str] = "domain_rule"
    refusal: ClassVar[Refusal] = Refusal.INVALID

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field

    @property
    def message(self) -> str:
        return str(self.args[0])

    def as_platform_error(self) -> KetenError:
        return PLATFORM_ERRORS[self.refusal](self.code, self.message, self.field)


@contextmanager
def domain_refusals() -> Iterator[None]:
    """Raises a domain's refusal from inside as the platform's error of its kind (400, 403,
    404 or 409), so an application's use case states once where its domain may refuse."""
    try:
        yield
    except DomainError as error:
        raise error.as_platform_error() from None


def first_error(messages: Any) -> tuple[str | None, str]:
    """The first (field path, message) of marshmallow's nested error messages.

    The path comes from the sender's own keys, so long digit runs are masked (a key could be a
    BSN) and anything but plain identifier characters is replaced: a key could be a name, or
    text that does not even encode (it ends up in message headers).
    """
    field, message = _first_error(messages, "")
    if field:
        field = re.sub(r"\d{6,}", "…", re.sub(r"[^A-Za-z0-9_.\-]", "?", field))[:120]
    return field, message


def _first_error(messages: Any, path: str) -> tuple[str | None, str]:
    if isinstance(messages, dict):
        for key, value in messages.items():
            sub = f"{path}.{key}" if path else str(key)
            if key == "_schema":
                sub = path
            return _first_error(value, sub)
    if isinstance(messages, list) and messages:
        if all(isinstance(m, str) for m in messages):
            return (path or None), " ".join(messages)
        return _first_error(messages[0], path)
    return (path or None), str(messages)
