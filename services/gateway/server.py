"""The gateway's HTTP server: nameko's eventlet WSGI server with the edges Keten needs.

- It listens without ``SO_REUSEPORT`` (eventlet sets it by default), so a second platform on a
  port already in use fails to start with one line instead of sharing the port and splitting
  the logins between two platforms.
- A request body larger than ``KETEN_MAX_REQUEST_BYTES`` is refused with 413 before it is
  read: from ``Content-Length``, or, for a chunked body, after reading at most the limit; the
  connection is closed rather than drained.
- A route that does not exist answers JSON (404, or 405 with ``Allow``), as every error does.
- Every response carries ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
  same-origin``, and ``Strict-Transport-Security`` when the request came over TLS. Behind
  ``KETEN_TRUSTED_PROXIES`` reverse proxies, their ``X-Forwarded-For`` and
  ``X-Forwarded-Proto`` are believed (werkzeug's ``ProxyFix``); otherwise they are ignored.

``Referrer-Policy`` is ``same-origin``, not ``no-referrer``: under ``no-referrer`` browsers send
``Origin: null`` with the page's own form posts, and the forms are checked by their origin.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

import eventlet
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp, parse_address
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Request, Response

from shared.config import ConfigurationError
from shared.dependencies import settings_from

log = logging.getLogger(__name__)

SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"))
#: One year, the usual value; only ever sent on a response that came over TLS.
HSTS = ("Strict-Transport-Security", "max-age=31536000")
#: The environ key through which the WSGI app asks the server to close the connection.
CLOSE_CONNECTION = "keten.close_connection"

StartResponse = Callable[..., Any]


class GatewayAddressInUse(ConfigurationError):
    """Another process listens on ``GATEWAY_ADDRESS`` already."""


def ensure_address_free(address: str) -> None:
    """Raises ``GatewayAddressInUse`` if something listens on ``address`` (``[host:]port``)
    already: checked before a platform starts anything, so that it fails with one line."""
    bind = parse_address(address)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listener will
        probe.bind((bind.address, bind.port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise _in_use(bind.address, bind.port) from None
        raise
    finally:
        probe.close()


def _in_use(host: str, port: int) -> GatewayAddressInUse:
    shown = f"{host or '0.0.0.0'}:{port}"  # noqa: S104 - only a message
    return GatewayAddressInUse(
        f"GATEWAY_ADDRESS {shown} is in use by another process (another keten?); "
        "stop it or choose another address"
    )


class KetenHttpProtocol(HttpOnlyProtocol):
    """nameko's protocol, letting the app close the connection instead of draining an unread
    body (eventlet reads and discards the rest of a body on a kept-alive connection)."""

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ[CLOSE_CONNECTION] = self._close_after_response
        return environ

    def _close_after_response(self) -> None:
        self.close_connection = 1


class KetenWebServer(WebServer):
    """nameko's web server with the edges above; shared by every gateway route."""

    def setup(self) -> None:
        super().setup()
        self.settings = settings_from(self.container.config)

    def start(self) -> None:
        if self._starting:  # type: ignore[has-type]
            return
        self._starting = True
        address = self.bind_addr
        try:
            self._sock = eventlet.listen(address, reuse_port=False)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:  # taken since ensure_address_free looked
                raise _in_use(address.address, address.port) from None
            raise
        self._sock.settimeout(None)  # nameko's workaround for kombu#838
        self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app(), protocol=KetenHttpProtocol)
        self._gt = self.container.spawn_managed_thread(self.run)

    def get_wsgi_app(self) -> Any:
        app: Any = KetenWsgiApp(self, self.settings.max_request_bytes)
        proxies = self.settings.trusted_proxies
        if proxies > 0:
            app = ProxyFix(app, x_for=proxies, x_proto=proxies)
        return app


class KetenWsgiApp(WsgiApp):
    """Routes a request to its entrypoint, with the limits and headers of the module doc."""

    def __init__(self, server: WebServer, max_request_bytes: int):
        super().__init__(server)
        self.max_request_bytes = max_request_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response = _with_security_headers(environ, start_response)
        refusal = self._refuse_body(environ)
        if refusal is not None:
            return refusal(environ, start_response)
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except NotFound:
            return _error(404, "no_such_route", "there is no such route; see docs/openapi.yaml")(
                environ, start_response
            )
        except MethodNotAllowed as exc:
            response = _error(405, "method_not_allowed", "this route does not take this method")
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods or ()))
            return response(environ, start_response)
        except HTTPException as exc:  # a redirect to the canonical URL (trailing slash)
            return exc(environ, start_response)
        request.path_values = values  # type: ignore[attr-defined]
        return provider.handle_request(request)(environ, start_response)

    def _refuse_body(self, environ: dict[str, Any]) -> Response | None:
        """413 for a body over the limit, read no further than the limit; ``None`` if it fits."""
        limit = self.max_request_bytes
        declared = environ.get("CONTENT_LENGTH") or ""
        if declared:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                invalid = _error(400, "bad_content_length", "Content-Length is not a number")
                return self._closing(environ, invalid)
            if length > limit:
                return self._closing(environ, _too_large(limit))
            return None
        if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None
        stream, received = environ["wsgi.input"], io.BytesIO()
        while received.tell() <= limit:
            chunk = stream.read(min(64 * 1024, limit + 1 - received.tell()))
            if not chunk:
                break
            received.write(chunk)
        if received.tell() > limit:
            return self._closing(environ, _too_large(limit))
        # What follows reads the body as if it had come with a Content-Length.
        environ["wsgi.input"] = io.BytesIO(received.getvalue())
        environ["CONTENT_LENGTH"] = str(received.tell())
        return None

    @staticmethod
    def _closing(environ: dict[str, Any], response: Response) -> Response:
        close = environ.get(CLOSE_CONNECTION)
        if close is not None:
            close()
        return response


def _with_security_headers(environ: dict[str, Any], start_response: StartResponse) -> StartResponse:
    over_tls = environ.get("wsgi.url_scheme") == "https"

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        present = {name.lower() for name, _ in headers}
        extra = [header for header in SECURITY_HEADERS if header[0].lower() not in present]
        if over_tls and HSTS[0].lower() not in present:
            extra.append(HSTS)
        return start_response(status, [*headers, *extra], exc_info)

    return start


def _error(status: int, code: str, message: str) -> Response:
    return Response(
        json.dumps({"error": {"code": code, "message": message}}),
        status=status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _too_large(limit: int) -> Response:
    return _error(413, "request_too_large", f"the request body is larger than {limit} bytes")
