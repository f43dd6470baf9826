"""Structured logs: one JSON object a line, naming the service and the correlation id of the work.

A share is followed through the platform by its correlation id: the gateway takes it from the
request (the share's ``request_id``, else an ``X-Correlation-ID`` header, else a new one), nameko
carries it as context data to every RPC, ``data_sharing`` writes it into its decision events, the
relay logs each event it publishes under it and every consumer handles the event under it.

``service`` and ``correlation_id`` are context variables. eventlet gives each green thread a fresh
context, so the worker, consumer and relay threads each set theirs (``bind``/``log_context``) and
concurrent work never mixes them up. Records carry ids, codes, pseudonyms and counts only, never
personal data (rule 7, docs/architecture.md): pass structured values as ``extra={...}``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO

from pythonjsonlogger.json import JsonFormatter

service_var: ContextVar[str | None] = ContextVar("keten_service", default=None)
correlation_var: ContextVar[str | None] = ContextVar("keten_correlation_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s [%(correlation_id)s]"


def bind(service: str | None = None, correlation_id: str | None = None) -> None:
    """Sets the context of the current green thread for the rest of its life (a worker)."""
    if service is not None:
        service_var.set(service)
    correlation_var.set(correlation_id)


@contextmanager
def log_context(service: str | None = None, correlation_id: str | None = None) -> Iterator[None]:
    """Sets the context for the duration of a block, then restores the previous one."""
    tokens = [correlation_var.set(correlation_id)]
    if service is not None:
        tokens.append(service_var.set(service))
    try:
        yield
    finally:
        for token in reversed(tokens):
            token.var.reset(token)


_process_service: str | None = None


def set_process_service(service: str | None) -> None:
    """Names the service of a process that runs just one, for records outside any work."""
    global _process_service
    _process_service = service


def process_service() -> str | None:
    """The one service this process runs, if it runs just one."""
    return _process_service


class ContextFilter(logging.Filter):
    """Adds ``service`` and ``correlation_id`` from the context to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "service", None) is None:
            record.service = service_var.get() or _process_service
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = correlation_var.get()
        return True


class ExpectedErrorsWithoutTraceback(logging.Filter):
    """nameko logs an entrypoint's expected exception (a refusal the caller can act on, such as
    an unknown case) at WARNING with a traceback; it is no fault of ours: one line at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "nameko.containers" and str(record.msg).startswith("(expected)"):
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class KetenJsonFormatter(JsonFormatter):
    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message", "service", "correlation_id"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record is written, not as it was when logging was
    configured: a stream swapped since (a test's capture, since closed) is not written to."""

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _: object) -> None:
        pass  # StreamHandler.__init__ sets it; the current sys.stderr is always used


def configure(level: str = "INFO", fmt: str = "json", stream: IO[str] | None = None) -> logging.Handler:
    """Sends every log record to ``stream`` (stderr) as JSON lines or, for people, as text."""
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderrHandler()
    if fmt == "text":
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    else:
        handler.setFormatter(KetenJsonFormatter())
    install(handler)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing is not handler:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def install(handler: logging.Handler) -> None:
    """Gives ``handler`` the platform's filters; tests capturing logs use it too."""
    handler.addFilter(ContextFilter())
    handler.addFilter(ExpectedErrorsWithoutTraceback())
    # eventlet's WSGI access lines name the client's IP address (personal data) and the query
    # string; the gateway logs each request itself, without them.
    logging.getLogger("nameko.web.server").setLevel(logging.WARNING)
