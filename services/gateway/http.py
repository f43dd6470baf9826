"""A JSON entrypoint for nameko's HTTP server: dicts in and out, errors as ``{"error": ...}``.

Every route is served by ``KetenWebServer`` (``services.gateway.server``: body limit, JSON for
unknown routes, security headers, no shared port). A database that cannot be reached, the
gateway's own or that of a service it calls, is a 503 with ``Retry-After`` (the connection
pool has already retried for about a second), never a 500.

Each request gets a correlation id (see ``shared.logs``), passed to every RPC the request makes
and returned in the ``X-Correlation-ID`` response header; a caller's W3C ``traceparent`` goes
with it, so what the request causes is logged in the caller's trace (``shared.ldv``). Each is
logged once and counted in ``keten_requests_total`` by its route, never by its path or query
(which could hold anything a caller typed).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from eventlet.event import Event
from eventsourcing import persistence
from nameko.exceptions import RemoteError
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Request, Response

from services.gateway.server import KetenWebServer
from shared import metrics, tracing
from shared.errors import InvalidRequest, KetenError, ServiceUnavailable
from shared.logs import log_context

log = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
#: Seconds a caller of a 503 is asked to wait before trying again.
RETRY_AFTER_SECONDS = 5
#: Errors of a database that cannot be reached (connection refused, ended, timed out, locked):
#: raised here, or by a service (arriving over RPC as a ``RemoteError`` of that type).
_DATABASE_ERRORS = (persistence.OperationalError, persistence.InterfaceError)
_REMOTE_DATABASE_ERRORS = frozenset(error.__name__ for error in _DATABASE_ERRORS)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload, ensure_ascii=False, default=str),
        status=status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def error_response(error: KetenError) -> Response:
    headers = None
    if error.status in (429, 503):  # when to try again: the error's own wait, or ours
        headers = {"Retry-After": str(getattr(error, "retry_after", RETRY_AFTER_SECONDS))}
    return json_response({"error": error.as_dict()}, status=error.status, headers=headers)


def database_unreachable(exc: Exception) -> bool:
    """Whether ``exc`` says a database could not be reached (here or in a service)."""
    if isinstance(exc, RemoteError):
        return exc.exc_type in _REMOTE_DATABASE_ERRORS
    return isinstance(exc, _DATABASE_ERRORS)


def read_json(request: Request) -> Any:
    try:
        return json.loads(request.get_data(cache=True) or b"null")
    except ValueError:
        raise InvalidRequest("not_json", "the request body is not JSON") from None


class JsonHttpHandler(HttpRequestHandler):  # type: ignore[misc]  # nameko has no type hints
    """Handlers return a dict/list (200), ``(status, payload)`` or a werkzeug ``Response``."""

    server = KetenWebServer()

    def __init__(self, method: str, url: str, **kwargs: Any):
        # A refusal the caller can act on is not an error of ours: no traceback in the logs.
        kwargs.setdefault("expected_exceptions", KetenError)
        super().__init__(method, url, **kwargs)

    def handle_request(self, request: Request) -> Response:
        started = time.perf_counter()
        request.shallow = False
        correlation_id = correlation_id_for(request)
        with log_context(self.container.service_name, correlation_id):
            try:
                args, kwargs = self.get_entrypoint_parameters(request)
                self.check_signature(args, kwargs)
                done = Event()
                self.container.spawn_worker(
                    self,
                    args,
                    kwargs,
                    # The caller's W3C trace context goes with every RPC (shared.tracing).
                    context_data={"correlation_id": correlation_id, **tracing.from_caller(request.headers)},
                    handle_result=partial(self.handle_result, done),
                )
                response = self.response_from_result(done.wait())
            except Exception as exc:
                response = self.response_from_exception(exc)
            self._record(request, response, time.perf_counter() - started)
        response.headers[CORRELATION_HEADER] = correlation_id
        return response

    def _record(self, request: Request, response: Response, seconds: float) -> None:
        status = response.status_code
        outcome = "ok" if status < 400 else "refused" if status < 500 else "error"
        service, entrypoint = self.container.service_name, self.method_name
        metrics.requests.labels(service, "http", entrypoint, outcome).inc()
        metrics.request_seconds.labels(service, "http", entrypoint).observe(seconds)
        milliseconds = round(seconds * 1000, 1)
        log.log(
            logging.DEBUG if entrypoint in ("health", "metrics") else logging.INFO,
            "%s %s: %s in %s ms",
            request.method,
            self.url,
            status,
            milliseconds,
            extra={
                "kind": "http",
                "entrypoint": entrypoint,
                "status": status,
                "outcome": outcome,
                "duration_ms": milliseconds,
            },
        )

    def response_from_result(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        status, payload = result if isinstance(result, tuple) else (200, result)
        return json_response(payload, status)

    def response_from_exception(self, exc: Exception) -> Response:
        if isinstance(exc, KetenError):
            return error_response(exc)
        if database_unreachable(exc):
            log.warning("database unreachable in %s (%s)", self.method_name, type(exc).__name__)
            return error_response(
                ServiceUnavailable(
                    "database_unavailable", "the platform's database cannot be reached; try again shortly"
                )
            )
        log.error("unexpected %s in %s", type(exc).__name__, self.method_name)
        return json_response(
            {"error": {"code": "internal_error", "message": "something went wrong on our side"}}, 500
        )


json_http = JsonHttpHandler.decorator


def correlation_id_for(request: Request) -> str:
    """The share's ``request_id`` (which its decision events carry), else the caller's
    ``X-Correlation-ID`` if well-formed, else a new id."""
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
        if isinstance(body, dict) and body.get("request_id"):
            return str(uuid.UUID(str(body["request_id"])))
    except ValueError:
        pass  # not JSON, or not a UUID: the handler answers that
    given = request.headers.get(CORRELATION_HEADER, "")
    return given if _CORRELATION_ID.match(given) else uuid.uuid4().hex


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as a browser's ``Origin`` header names it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def is_same_origin(request: Request, portal_url: str | None = None) -> bool:
    """Whether a browser sent this request from the gateway's own pages: its ``Origin`` (or,
    from a browser that sends none, its ``Referer``) is the gateway as this request reached it,
    or the portal's public address (``KETEN_PORTAL_URL``, when a proxy changes the host). A
    request that names neither is refused: every browser in use names one on a form post."""
    claimed = request.headers.get("Origin") or origin_of(request.headers.get("Referer", ""))
    if not claimed or claimed == "null":
        return False
    allowed = {f"{request.scheme}://{request.host}".lower()}
    if portal_url:
        allowed.add(origin_of(portal_url))
    return claimed.lower() in allowed
