"""nameko dependency providers every service uses: its Application (with the relay), RPC with
a timeout, and a health check."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from typing import Any

import eventlet
from kombu import Connection
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc, RpcProxy
from nameko.timer import Timer

from shared import logs, metrics, ops
from shared.config import Settings
from shared.db import PgDatastore
from shared.errors import KetenError, ServiceUnavailable
from shared.pseudonym import Pseudonymiser
from shared.publishing import ConfirmingPublisher
from shared.relay import AlwaysLeader, EventRelay, PgLease

log = logging.getLogger(__name__)

#: A relay with events waiting that has not published for this long is reported stuck.
RELAY_STUCK_AFTER = 60.0


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
        self.relay: EventRelay | None = None
        super().__init__(**options)

    def setup(self) -> None:
        self.settings = settings_from(self.container.config)
        self.app = self.app_cls(self.settings)
        self._wake = threading.Event()
        self._stopping = False
        self._gt: Any = None
        self.app.on_save(self._wake.set)

    def start(self) -> None:
        if self.relay_enabled:
            self._gt = self.container.spawn_managed_thread(
                self._relay_forever, identifier=f"{self.app.name}.relay"
            )

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._gt is not None:
            try:
                with eventlet.Timeout(10):
                    self._gt.wait()
            except BaseException:  # noqa: S110 - a relay stuck in I/O is killed with the container
                pass
        self.app.close()

    def kill(self) -> None:
        self._stopping = True
        if self._gt is not None:
            self._gt.kill()

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.app

    def _relay_forever(self) -> None:
        settings = self.settings
        source = self.container.service_name
        logs.bind(source)
        publisher = ConfirmingPublisher(settings.amqp_uri)
        datastore = self.app.recorder.datastore
        lease = (
            PgLease(datastore, f"relay:{self.app.name}")
            if isinstance(datastore, PgDatastore)
            else AlwaysLeader()
        )
        backoff = 0.5
        while not self._stopping:
            leading = lease.acquire()
            metrics.relay_leader.labels(source).set(1 if leading else 0)
            if not leading:
                self.relay = None  # another replica relays; stand by
                with contextlib.suppress(KeyError):  # the leader's lag is the one that counts
                    metrics.relay_lag.remove(source)
                self._wake.wait(timeout=2.0)
                self._wake.clear()
                continue
            try:
                if self.relay is None:
                    self.relay = EventRelay(
                        self.app,
                        source,
                        publisher,
                        batch_size=settings.relay_batch_size,
                        durable_position=not settings.embedded_broker,
                    )
                published = self.relay.publish_pending()
                if published:
                    metrics.events_published.labels(source).inc(published)
                metrics.relay_lag.labels(source).set(self.relay.lag())
                backoff = 0.5
                if published < settings.relay_batch_size:
                    self._wake.wait(timeout=settings.relay_interval)
                    self._wake.clear()
            except Exception as exc:
                log.warning("%s relay: %s; retrying in %.1fs", source, type(exc).__name__, backoff)
                publisher.close()
                with contextlib.suppress(Exception):  # the store may be what is down
                    if self.relay is not None:
                        metrics.relay_lag.labels(source).set(self.relay.lag())
                self._wake.wait(timeout=backoff)
                backoff = min(backoff * 2, 10.0)
        publisher.close()
        lease.release()
        metrics.relay_leader.labels(source).set(0)

    def relay_stuck(self) -> bool:
        relay = self.relay
        if relay is None or not self.relay_enabled:
            return False
        return time.monotonic() - relay.last_progress > RELAY_STUCK_AFTER and relay.lag() > 0


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
    id, which nameko carries to every RPC the worker makes) and counts RPC requests by method,
    outcome and latency.
    """

    def setup(self) -> None:
        self.settings = settings_from(self.container.config)
        self._started: dict[Any, float] = {}

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
        self._started[worker_ctx] = time.perf_counter()

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
        from shared.commands import AgencyCommands
        from shared.consumer import EventConsumer

        report: dict[str, Any] = {"service": self.container.service_name, "ok": True}
        report["broker"] = broker_status(self.settings)
        report["ok"] = report["broker"] == "ok"
        for dependency in self.container.dependencies:
            if isinstance(dependency, ApplicationProvider):
                try:
                    dependency.app.recorder.max_notification_id()
                    report["store"] = "ok"
                except Exception as exc:
                    report["store"] = type(exc).__name__
                    report["ok"] = False
                relay = dependency.relay
                report["relay_lag"] = relay.lag() if relay is not None and report["store"] == "ok" else None
                if report["store"] == "ok" and dependency.relay_stuck():
                    report["relay"] = "stuck"
                    report["ok"] = False
            if isinstance(dependency, AgencyCommands):
                report["commands"] = "ok" if dependency.consuming else "waiting"
                report["ok"] = report["ok"] and dependency.consuming
        for extension in self.container.extensions:
            if isinstance(extension, EventConsumer):
                report["consumer"] = extension.status()
                report["ok"] = report["ok"] and report["consumer"] == "ok"
        return report


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
