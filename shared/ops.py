"""The operations endpoints of a service process, on ``OPS_PORT``: what Kubernetes and
Prometheus ask of every process, whichever services it runs.

- ``GET /metrics``: the process's Prometheus registry (text format);
- ``GET /livez``: 200 while every service container of the process runs. It checks nothing
  outside the process, so an outage of the broker or database never gets pods restarted in a loop;
- ``GET /readyz``: 200 when every service of the process is ready (``ServiceHealth.check``:
  broker reachable, store answering, relay not stuck, consumer consuming), else 503 naming what
  is not. A pod that is not ready gets no HTTP traffic and holds up a rolling update.

One server per process and port, shared by the containers of the process: ``ServiceHealth``
attaches each container when it starts and detaches it when it stops. The embedded platform
leaves ``OPS_PORT`` unset and serves ``/metrics`` on the gateway.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import eventlet
import eventlet.wsgi
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger(__name__)

#: Seconds a readiness check may take before the service counts as not ready.
READY_TIMEOUT = 5.0

PATHS = ("/metrics", "/livez", "/readyz")

LiveCheck = Callable[[], bool]
ReadyCheck = Callable[[], dict[str, Any]]


class OpsServer:
    """A small WSGI server on its own green thread, not tied to any one container."""

    def __init__(self, port: int, host: str = "0.0.0.0"):  # noqa: S104 - probes come from the node
        self.host = host
        self.port = port
        self.services: dict[str, tuple[LiveCheck, ReadyCheck]] = {}
        self._gt: Any = None
        self._socket: Any = None

    def start(self) -> None:
        self._socket = eventlet.listen((self.host, self.port))
        self.port = self._socket.getsockname()[1]
        self._gt = eventlet.spawn(
            eventlet.wsgi.server, self._socket, self.app, log=log, log_output=False, debug=False
        )
        log.info("operations endpoints on port %s (/metrics, /livez, /readyz)", self.port)

    def stop(self) -> None:
        if self._gt is not None:
            self._gt.kill()
            self._gt = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    # -- WSGI -------------------------------------------------------------------------------
    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _respond(start_response, 405, {"error": "method not allowed"})
        if path == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest(REGISTRY)]
        if path == "/livez":
            dead = sorted(name for name, (live, _) in list(self.services.items()) if not live())
            alive = bool(self.services) and not dead
            return _respond(start_response, 200 if alive else 503, {"alive": alive, "dead": dead})
        if path == "/readyz":
            reports = self.readiness()
            ready = bool(reports) and all(report.get("ok") for report in reports.values())
            return _respond(start_response, 200 if ready else 503, {"ready": ready, "services": reports})
        return _respond(start_response, 404, {"error": "not found", "paths": list(PATHS)})

    def readiness(self) -> dict[str, dict[str, Any]]:
        def check(item: tuple[str, tuple[LiveCheck, ReadyCheck]]) -> tuple[str, dict[str, Any]]:
            name, (_, ready) = item
            try:
                with eventlet.Timeout(READY_TIMEOUT):
                    return name, ready()
            except eventlet.Timeout:
                return name, {"ok": False, "error": f"check took longer than {READY_TIMEOUT:g}s"}
            except Exception as exc:
                return name, {"ok": False, "error": type(exc).__name__}

        items = sorted(self.services.items())
        return dict(eventlet.GreenPool(max(1, len(items))).imap(check, items))


def _respond(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> list[bytes]:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
    start_response(
        f"{status} {reason[status]}",
        [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
    )
    return [json.dumps(body, default=str).encode()]


_servers: dict[int, OpsServer] = {}
_lock = threading.Lock()


def attach(port: int, service: str, live: LiveCheck, ready: ReadyCheck) -> OpsServer:
    """Serves ``service``'s probes on ``port``, starting the process's server on first use."""
    with _lock:
        server = _servers.get(port)
        if server is None:
            server = OpsServer(port)
            server.start()
            _servers[port] = server
        server.services[service] = (live, ready)
        return server


def detach(port: int, service: str) -> None:
    """Stops serving ``service``; the server closes with the last service of the process."""
    with _lock:
        server = _servers.get(port)
        if server is None:
            return
        server.services.pop(service, None)
        if not server.services:
            server.stop()
            del _servers[port]
