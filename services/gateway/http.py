"""A JSON entrypoint for nameko's HTTP server: dicts in and out, errors as ``{"error": ...}``."""

from __future__ import annotations

import json
import logging
from typing import Any

from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Request, Response

from shared.errors import InvalidRequest, KetenError

log = logging.getLogger(__name__)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload, ensure_ascii=False, default=str),
        status=status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def error_response(error: KetenError) -> Response:
    return json_response({"error": error.as_dict()}, status=error.status)


def read_json(request: Request) -> Any:
    try:
        return json.loads(request.get_data(cache=True) or b"null")
    except ValueError:
        raise InvalidRequest("not_json", "the request body is not JSON") from None


class JsonHttpHandler(HttpRequestHandler):
    """Handlers return a dict/list (200), ``(status, payload)`` or a werkzeug ``Response``."""

    def __init__(self, method: str, url: str, **kwargs: Any):
        # A refusal the caller can act on is not an error of ours: no traceback in the logs.
        kwargs.setdefault("expected_exceptions", KetenError)
        super().__init__(method, url, **kwargs)

    def response_from_result(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        status, payload = result if isinstance(result, tuple) else (200, result)
        return json_response(payload, status)

    def response_from_exception(self, exc: Exception) -> Response:
        if isinstance(exc, KetenError):
            return error_response(exc)
        log.error("unexpected %s in %s", type(exc).__name__, self.method_name)
        return json_response(
            {"error": {"code": "internal_error", "message": "something went wrong on our side"}}, 500
        )


json_http = JsonHttpHandler.decorator
