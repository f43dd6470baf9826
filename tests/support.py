"""Helpers for tests that run services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import requests
from nameko.runners import ServiceRunner

from keten.children import stop_with_parent
from keten.platform import SERVICES, build_runner
from keten_client import Credentials, signed_http_headers
from shared.agencies import local_credentials_dir, register_new_credentials
from shared.config import Settings
from tests.conftest import free_port


@dataclass
class RunningPlatform:
    runner: ServiceRunner
    settings: Settings
    env: dict[str, str]

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.gateway_address}"

    def container(self, name: str) -> Any:
        for container in self.runner.containers:
            if container.service_name == name:
                return container
        raise KeyError(name)

    def credentials(self, agency: str = "gemeente-utrecht") -> Credentials:
        """An agency's credentials for signing: the embedded platform's generated ones, or a
        key pair registered for this test on a platform with a database server."""
        return agency_credentials(self.settings, agency)

    def app(self, name: str) -> Any:
        from shared.dependencies import ApplicationProvider

        for dependency in self.container(name).dependencies:
            if isinstance(dependency, ApplicationProvider):
                return dependency.app
        raise KeyError(name)


@contextmanager
def running_platform(env: dict[str, str], services: list[str] | None = None) -> Iterator[RunningPlatform]:
    """Runs the named services (all by default) in this process, configured by ``env``."""
    settings = Settings.from_env(env)
    runner = build_runner(settings, services or list(SERVICES), **env)
    runner.start()
    try:
        yield RunningPlatform(runner, settings, env)
    finally:
        runner.stop()


def agency_credentials(settings: Settings, agency: str) -> Credentials:
    path = local_credentials_dir(settings) / f"{agency}.json"
    if settings.embedded_broker and not settings.uses_postgres and path.exists():
        return Credentials.load(path)
    return register_new_credentials(settings, agency)


def signed_request(
    method: str,
    base_url: str,
    path: str,
    body: Any,
    credentials: Credentials,
    timeout: float = 10,
    headers: dict[str, str] | None = None,
) -> Any:
    """Calls the gateway as ``credentials``' agency would: the request signed. ``body`` is sent
    as JSON, or as it is if it is already bytes."""
    import json

    import requests

    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    signed = {**(headers or {}), **signed_http_headers(credentials, method, path, raw)}
    return requests.request(method, base_url + path, data=raw or None, headers=signed, timeout=timeout)


def signed_post(base_url: str, path: str, body: Any, credentials: Credentials, timeout: float = 10) -> Any:
    return signed_request("POST", base_url, path, body, credentials, timeout)


def signed_as_published(settings: Settings, message: Any) -> dict[str, Any]:
    """The headers the relay would publish ``message`` (an ``OutgoingMessage`` of an event) with:
    its own, and its source's signature under ``settings``' master key."""
    from shared.provenance import EventKeys

    source = message.headers["keten-source"]
    return {**message.headers, **EventKeys.for_settings(settings).sign(source, message.body).headers()}


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Waits until ``check`` returns something truthy (events travel asynchronously)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except AssertionError as exc:
            last_error = exc
        time.sleep(interval)
    if last_error:
        raise last_error
    raise AssertionError(f"condition not met within {timeout}s")


def while_progressing(
    check: Callable[[], Any],
    progress: Callable[[], Any],
    stall: float = 120.0,
    interval: float = 0.5,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Waits until ``check`` returns something truthy for as long as ``progress()`` keeps
    changing: gives up only after ``stall`` seconds without a change, so that a slow (loaded)
    machine gets the time it needs while a process that stopped working is still caught. On
    giving up, the assertion says what ``describe()`` found."""
    seen = progress()
    deadline = time.monotonic() + stall
    while True:
        result = check()
        if result:
            return result
        now = progress()
        if now != seen:
            seen, deadline = now, time.monotonic() + stall
        elif time.monotonic() > deadline:
            found = describe() if describe is not None else ""
            raise AssertionError(f"no progress for {stall:.0f}s (stuck at {seen!r}){found}")
        time.sleep(interval)


def register_active_cases(client: Any, case_ids: list[str]) -> list[str]:
    """Registers each case through the gateway (``keten.demo.Client``) and activates it, retrying
    while case_registration has not stored the registration yet; returns ``case_ids``."""
    from keten.demo import register_case_command

    for case_id in case_ids:
        client.call("POST", "/api/cases", json=register_case_command(case_id))
        client.retry_until(
            "the case is active",
            lambda case_id=case_id: client.call(
                "POST", f"/api/cases/{case_id}/activate", json={"schema_version": 1}
            ),
        )
    return case_ids


def pg_dump(dsn: str, schema: str) -> str:
    """Everything PostgreSQL holds in ``schema`` (tables and rows), as pg_dump prints it."""
    import subprocess

    result = subprocess.run(
        ["pg_dump", "--data-only", "--inserts", f"--schema={schema}", dsn],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def sqlite_dump(var_dir: str) -> bytes:
    """The raw bytes of every SQLite file (and its write-ahead log) under ``var_dir``."""
    from pathlib import Path

    return b"".join(path.read_bytes() for path in sorted(Path(var_dir).rglob("*.sqlite*")))


def keten(*args: str, env: dict[str, str], timeout: float = 120) -> Any:
    """Runs the ``keten`` command line in a process of its own, configured by ``env``."""
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "keten.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def json_logs() -> Iterator[Any]:
    """Captures every log record as ``keten`` writes it to stderr: JSON lines, with the
    platform's filters, beside pytest's own capture. Yields the stream."""
    import io
    import logging

    from shared import logs

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.KetenJsonFormatter())
    logs.install(handler)
    root = logging.getLogger()
    root.addHandler(handler)
    level, root.level = root.level, logging.INFO
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


class Mailbox:
    """A real SMTP server on localhost that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refused: set[str] = set()
        #: What the server answers to QUIT (after it accepted the message).
        self.goodbye = "221 Bye"
        self.port = free_port()
        self.controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        mailbox = self

        class Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if address in mailbox.refused:
                    return "550 no such mailbox"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mailbox.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 OK"

            async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
                return mailbox.goodbye

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        # aiosmtpd runs its own asyncio loop in a real thread, untouched by eventlet.
        starter = threading.Thread(target=self.controller.start)
        starter.start()
        starter.join()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def notifying_env(env: dict[str, str], mailbox: Mailbox, letters: Any) -> dict[str, str]:
    """``env`` with e-mail to ``mailbox``, letters written under ``letters``, and notices sent
    and bundled within a fraction of a second (tests should not wait for the defaults)."""
    return {
        **env,
        "KETEN_SMTP_HOST": "127.0.0.1",
        "KETEN_SMTP_PORT": str(mailbox.port),
        "KETEN_NOTIFY_INTERVAL": "0.2",
        "KETEN_NOTIFY_BUNDLE_SECONDS": "0.2",
        "KETEN_LETTER_RENDER_INTERVAL": "0.5",
        "KETEN_LETTER_DIR": str(letters),
    }


class ServiceProcess:
    """``keten run SERVICE`` in a process of its own, as a pod runs it (and restarts it)."""

    def __init__(self, service: str, env: dict[str, str], log_dir: Path, log_name: str | None = None):
        self.service = service
        self.ops_port = free_port()
        self.log_path = log_dir / f"{log_name or service}.log"
        self.env = {**os.environ, **env, "OPS_PORT": str(self.ops_port), "KETEN_LOG_FORMAT": "json"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:  # a restart appends to the same log
            self.process = subprocess.Popen(
                [sys.executable, "-m", "keten.cli", "run", self.service],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=stop_with_parent,  # none left running when a timeout kills the test run
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def get(self, path: str) -> requests.Response:
        return requests.get(f"http://127.0.0.1:{self.ops_port}{path}", timeout=10)

    def ready(self) -> bool:
        try:
            return self.get("/readyz").status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> int | None:
        """Stops it as Kubernetes does (SIGTERM, then SIGKILL after 30 s); its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]


@contextmanager
def running_services(
    env: dict[str, str], processes: dict[str, ServiceProcess], start: Iterable[str] | None = None
) -> Iterator[dict[str, int | None]]:
    """``keten migrate`` with ``env``, then ``processes`` started (only those named in
    ``start``, when given: a test starts the others itself), stopped however the test ends.
    Yields a dict that holds each process's exit code once they are stopped."""
    for _attempt in range(3):  # a loaded machine can time out a connection: retried, as a Job is
        migrated = keten("migrate", env=env)
        if migrated.returncode == 0:
            break
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    for name in processes if start is None else start:
        processes[name].start()
    exit_codes: dict[str, int | None] = {}
    try:
        yield exit_codes
    finally:
        for name, process in processes.items():
            exit_codes[name] = process.stop()
