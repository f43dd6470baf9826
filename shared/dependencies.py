"""nameko dependency providers every service uses: its Application (with the relay), RPC with
a timeout, and a health check."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from typing import Any, Protocol, runtime_checkable

import eventlet
import greenlet
from kombu import Connection
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc, RpcProxy
from nameko.timer import Timer

from shared import consistency, logs, metrics, ops, tracing
from shared.config import Settings
from shared.errors import KetenError, ServiceUnavailable
from shared.pseudonym import Pseudonymiser
from shared.relay import RelayLoop
from shared.topology import SUBSCRIPTIONS

log = logging.getLogger(__name__)


def settings_from(config: dict[str, Any]) -> Settings:
    """Settings from the environment, overridden by the container's nameko config."""
    return Settings.from_env(
        {**os.environ, **{k: v for k, v in config.items() if isinstance(v, str | int | float)}}
    )


class ApplicationProvider(DependencyProvider):
    """Gives workers the service's eventsourcing Application and relays its events.

    One per service: the store it opens is where the service's events, read models and
    tracking records live.
    """

    def __init__(self, app_cls: type, relay: bool = True, **options: Any):
        self.app_cls = app_cls
        self.relay_enabled = relay
        self.app: Any = None
        self.relay_loop: RelayLoop | None = None
        super().__init__(**options)

    def setup(self) -> None:
        self.settings = settings_from(self.container.config)
        self.app = self.app_cls(self.settings)
        self._gt: Any = None
        self._token_keys = consistency.TokenKeys(self.settings.master_key, self.settings.previous_master_key)
        self._consumes = frozenset(SUBSCRIPTIONS.get(self.container.service_name, ()))
        # At most half the workers wait for a consistency token: the rest take the events.
        self._waiting = threading.BoundedSemaphore(max(1, self.container.max_workers // 2))
        if self.relay_enabled:
            self.relay_loop = RelayLoop(self.app, self.container.service_name, self.settings)

    def start(self) -> None:
        if self.relay_loop is not None:
            self._gt = self.container.spawn_managed_thread(
                self.relay_loop.run, identifier=f"{self.app.name}.relay"
            )

    def stop(self) -> None:
        if self.relay_loop is not None:
            self.relay_loop.stop()
        if self._gt is not None:
            try:
                with eventlet.Timeout(10):
                    self._gt.wait()
            except BaseException:  # noqa: S110 - a relay stuck in I/O is killed with the container
                pass
        self.app.close()

    def kill(self) -> None:
        if self.relay_loop is not None:
            self.relay_loop.stop()
        if self._gt is not None:
            self._gt.kill()

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.app

    def worker_setup(self, worker_ctx: Any) -> None:
        # A handler the event consumer runs while its batch is open works inside the batch.
        batch = self.app.open_batch
        if batch is not None and getattr(worker_ctx.entrypoint, "joins_batch", False):
            batch.join(greenlet.getcurrent())
        # Each worker records what it writes, for its answer's consistency token.
        consistency.start(
            consistency.Recording(
                keys=self._token_keys,
                position=self.app.position,
                consumes=self._consumes,
                waiting=self._waiting,
                service=self.container.service_name,
            )
        )

    def worker_teardown(self, worker_ctx: Any) -> None:
        batch = self.app.open_batch
        if batch is not None:
            batch.leave(greenlet.getcurrent())
        consistency.stop()

    def health_report(self) -> tuple[dict[str, Any], bool]:
        """The store answers, and the relay (if it leads) is not stuck."""
        try:
            self.app.recorder.max_notification_id()
            store = "ok"
        except Exception as exc:
            store = type(exc).__name__
        report: dict[str, Any] = {"store": store}
        relay = self.relay_loop.relay if self.relay_loop is not None else None
        report["relay_lag"] = relay.lag() if relay is not None and store == "ok" else None
        if store == "ok" and self.relay_loop is not None and self.relay_loop.stuck():
            report["relay"] = "stuck"
        return report, store == "ok" and "relay" not in report


class Pseudonyms(DependencyProvider):
    """Gives workers the platform's pseudonymiser, for ``load_command(..., pseudonymise=...)``:
    a BSN in a command becomes the subject's pseudonym as the command is loaded."""

    def setup(self) -> None:
        self.pseudonymiser = Pseudonymiser(settings_from(self.container.config).pseudonym_secret)

    def get_dependency(self, worker_ctx: Any) -> Pseudonymiser:
        return self.pseudonymiser


class _TimedServiceProxy:
    def __init__(self, proxy: Any, service: str, timeout: float):
        self._proxy, self._service, self._timeout = proxy, service, timeout

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            reply = getattr(self._proxy, method).call_async(*args, **kwargs)
            try:
                with eventlet.Timeout(self._timeout):
                    return reply.result()
            except eventlet.Timeout:
                raise ServiceUnavailable(
                    "service_unavailable", f"{self._service} did not answer within {self._timeout:g}s"
                ) from None

        return call


class ServiceRpc(RpcProxy):
    """``RpcProxy`` whose calls fail with ``ServiceUnavailable`` after ``KETEN_RPC_TIMEOUT``."""

    def get_dependency(self, worker_ctx: Any) -> Any:
        timeout = settings_from(self.container.config).rpc_timeout
        return _TimedServiceProxy(super().get_dependency(worker_ctx), self.target_service, timeout)


class ServiceHealth(DependencyProvider):
    """The service's operational face. ``check()`` says whether the broker is reachable, the
    store answers, the relay moves and the consumer consumes; the gateway's /health calls it
    over RPC and, with ``OPS_PORT`` set, the process's /readyz (``shared.ops``) directly.

    Around every entrypoint it also binds the worker's log context (service and correlation
    id, which nameko carries to every RPC the worker makes), makes the trace context the work
    continues current (``shared.tracing``) and counts RPC requests by method, outcome and
    latency.
    """

    def setup(self) -> None:
        self.settings = settings_from(self.container.config)
        self._started: dict[Any, float] = {}
        self._traces: dict[Any, object] = {}

    def start(self) -> None:
        if self.settings.ops_port:
            ops.attach(self.settings.ops_port, self.container.service_name, self.alive, self.check)

    def stop(self) -> None:
        if self.settings.ops_port:
            ops.detach(self.settings.ops_port, self.container.service_name)

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.check

    # -- every worker -------------------------------------------------------------------------
    def worker_setup(self, worker_ctx: Any) -> None:
        correlation_id = worker_ctx.data.get("correlation_id") or uuid.uuid4().hex
        worker_ctx.data["correlation_id"] = correlation_id
        logs.bind(self.container.service_name, correlation_id)
        self._traces[worker_ctx] = tracing.enter_worker(worker_ctx.data)
        self._started[worker_ctx] = time.perf_counter()

    def worker_teardown(self, worker_ctx: Any) -> None:
        token = self._traces.pop(worker_ctx, None)
        if token is not None:
            tracing.leave_worker(token)

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started = self._started.pop(worker_ctx, None)
        if started is None or not isinstance(worker_ctx.entrypoint, Rpc):
            return  # consumed events and HTTP requests are measured where they are received
        seconds = time.perf_counter() - started
        method = worker_ctx.entrypoint.method_name
        outcome = "ok"
        if exc_info is not None:
            outcome = "refused" if isinstance(exc_info[1], KetenError) else "error"
        metrics.requests.labels(self.container.service_name, "rpc", method, outcome).inc()
        metrics.request_seconds.labels(self.container.service_name, "rpc", method).observe(seconds)
        milliseconds = round(seconds * 1000, 1)
        log.log(
            logging.DEBUG if method == "health" else logging.INFO,
            "rpc %s: %s in %s ms",
            method,
            outcome,
            milliseconds,
            extra={"kind": "rpc", "entrypoint": method, "outcome": outcome, "duration_ms": milliseconds},
        )

    # -- checks -------------------------------------------------------------------------------
    def alive(self) -> bool:
        return not (self.container._died.ready() or self.container._being_killed)

    def check(self) -> dict[str, Any]:
        report: dict[str, Any] = {"service": self.container.service_name, "ok": True}
        report["broker"] = broker_status(self.settings)
        healthy = report["broker"] == "ok"
        for extension in self.container.extensions:
            if isinstance(extension, ReportsHealth):
                entries, ok = extension.health_report()
                report.update(entries)
                healthy = healthy and ok
        report["ok"] = healthy
        return report


@runtime_checkable
class ReportsHealth(Protocol):
    """An extension with a part in its service's health (the store and relay, the consumers).

    ``ServiceHealth.check`` asks every extension of the container that has this method, so it
    need not know their types: entries for the report, and whether that part is healthy.
    """

    def health_report(self) -> tuple[dict[str, Any], bool]: ...


def broker_status(settings: Settings) -> str:
    """ "ok" if a connection to the broker opens now, else the error's class name."""
    if settings.embedded_broker:
        return "ok"  # in-process: reachable while the process runs
    connection = Connection(settings.amqp_uri, connect_timeout=3)
    try:
        connection.connect()
        return "ok"
    except Exception as exc:
        return type(exc).__name__
    finally:
        with contextlib.suppress(Exception):  # closing a connection that never opened
            connection.release()


class SettingsTimer(Timer):
    """nameko's timer with its interval from a setting (seconds; 0 or less: never fires)."""

    def __init__(self, setting: str, **kwargs: Any):
        self.setting = setting
        super().__init__(interval=0, **kwargs)

    def setup(self) -> None:
        self.interval = float(getattr(settings_from(self.container.config), self.setting))

    def start(self) -> None:
        if self.interval > 0:
            super().start()

    def stop(self) -> None:
        if self.gt is not None:
            super().stop()

    def kill(self) -> None:
        if self.gt is not None:
            super().kill()


settings_timer = SettingsTimer.decorator
