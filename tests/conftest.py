"""Test fixtures. Real RabbitMQ and PostgreSQL where the tests say so: each test gets its own
RabbitMQ vhost and its own PostgreSQL schema, so runs never collide. Outside CI a test that needs
a server skips (saying which) when the server is down; with CI=true that is a failure."""

from __future__ import annotations

import os
import warnings

# selenium brings trio, whose hypothesis plugin cannot import under eventlet's monkey patching.
os.environ.setdefault("HYPOTHESIS_NO_PLUGINS", "1")
warnings.filterwarnings("ignore", message=r"(?s)\s*Eventlet is deprecated")
import eventlet  # noqa: E402

eventlet.monkey_patch()

import socket  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

import psycopg2  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402

from shared import transport  # noqa: E402
from shared.broker_admin import BrokerAdmin  # noqa: E402
from shared.config import Settings, generate_secret  # noqa: E402
from shared.db import close_postgres_datastores  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"
RABBIT_HOST = os.environ.get("TEST_RABBIT_HOST", "127.0.0.1")
RABBIT_API = os.environ.get("TEST_RABBIT_API", f"http://{RABBIT_HOST}:15672/api")
RABBIT_AUTH = ("guest", "guest")
POSTGRES_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def pytest_configure(config: Any) -> None:
    config.option.suppress_eventlet_notification = True


def unavailable(what: str, detail: str) -> None:
    message = f"{what} is not reachable ({detail}); integration tests need the real server"
    if IN_CI:
        pytest.fail(message + " and CI=true forbids skipping", pytrace=False)
    pytest.skip(message)


# -- PostgreSQL -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    try:
        psycopg2.connect(POSTGRES_DSN, connect_timeout=3).close()
    except psycopg2.Error as exc:
        unavailable("PostgreSQL", type(exc).__name__)
    return POSTGRES_DSN


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A schema of its own for this test, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield schema
    # The pools of a process live as long as it does; a test's own schema dies with the test.
    close_postgres_datastores(schema)
    conn = psycopg2.connect(postgres_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


# -- RabbitMQ ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def rabbit_api() -> str:
    try:
        socket.create_connection((RABBIT_HOST, 5672), timeout=3).close()
        requests.get(f"{RABBIT_API}/overview", auth=RABBIT_AUTH, timeout=5).raise_for_status()
    except (OSError, requests.RequestException) as exc:
        unavailable("RabbitMQ (AMQP on 5672 and the management API on 15672)", type(exc).__name__)
    return RABBIT_API


class Rabbit:
    """A vhost of our own on the real broker, and the management API to look inside it."""

    def __init__(self, api: str, vhost: str):
        self.api = api
        self.vhost = vhost
        self.amqp_uri = f"amqp://guest:guest@{RABBIT_HOST}:5672/{quote(vhost, safe='')}"

    def get(self, path: str) -> Any:
        response = requests.get(f"{self.api}{path}", auth=RABBIT_AUTH, timeout=10)
        response.raise_for_status()
        return response.json()

    def queue(self, name: str) -> dict[str, Any]:
        return self.get(f"/queues/{quote(self.vhost, safe='')}/{quote(name, safe='')}")  # type: ignore[no-any-return]

    def wait_for_queue_length(self, name: str, length: int, timeout: float = 15.0) -> dict[str, Any]:
        # The management API refreshes its counters every few seconds.
        deadline = time.monotonic() + timeout
        while True:
            queue = self.queue(name)
            if queue.get("messages", -1) == length or time.monotonic() > deadline:
                return queue
            time.sleep(0.5)


@pytest.fixture
def rabbit(rabbit_api: str) -> Iterator[Rabbit]:
    vhost = f"keten-test-{uuid.uuid4().hex[:12]}"
    broker = BrokerAdmin(rabbit_api.rstrip("/"), *RABBIT_AUTH, vhost)
    broker.create_vhost()
    yield Rabbit(rabbit_api, vhost)
    broker.delete_vhost()


# -- settings ---------------------------------------------------------------------------------
def secrets_env() -> dict[str, str]:
    return {"KETEN_MASTER_KEY": generate_secret(), "KETEN_PSEUDONYM_SECRET": generate_secret()}


#: Tests poll the citizen's overview by logging in again and again; the login limits have tests
#: of their own (tests/e2e/test_citizen_security.py), which set them back.
GENEROUS_LOGIN_LIMITS = {"KETEN_LOGIN_LIMIT_PER_ADDRESS": "100000", "KETEN_LOGIN_LIMIT_PER_CITIZEN": "100000"}


@pytest.fixture
def memory_settings() -> Settings:
    """In-memory SQLite stores: unit tests of applications."""
    return Settings.from_env({"DATABASE_URL": "sqlite://memory"})


@pytest.fixture
def embedded_env(tmp_path: Any) -> Iterator[dict[str, str]]:
    """The embedded default (SQLite files, in-process broker) in a fresh var directory."""
    transport.reset()
    yield {
        "KETEN_VAR_DIR": str(tmp_path / "var"),
        "AMQP_URI": "keten-memory://localhost/",
        "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
        **GENEROUS_LOGIN_LIMITS,
        **secrets_env(),
    }
    transport.reset()


@pytest.fixture
def production_env(rabbit: Rabbit, pg_schema: str, postgres_dsn: str, tmp_path: Any) -> dict[str, str]:
    """Real RabbitMQ (own vhost) and PostgreSQL (own schema)."""
    return {
        "AMQP_URI": rabbit.amqp_uri,
        "DATABASE_URL": postgres_dsn,
        "DATABASE_SCHEMA": pg_schema,
        "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
        "KETEN_RELAY_INTERVAL": "0.02",
        "KETEN_LETTER_DIR": str(tmp_path / "letters"),
        **GENEROUS_LOGIN_LIMITS,
        **secrets_env(),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


@pytest.fixture(autouse=True, scope="session")
def _no_platform_settings_from_the_shell() -> None:
    """Tests configure each platform themselves; a developer's exported settings must not leak in."""
    for name in list(os.environ):
        if name in (
            "AMQP_URI",
            "DATABASE_URL",
            "DATABASE_SCHEMA",
            "GATEWAY_ADDRESS",
            "OPS_PORT",
        ) or name.startswith("KETEN_"):
            del os.environ[name]


@pytest.fixture
def mailbox():
    """A real SMTP server on localhost (aiosmtpd) that keeps what it accepts."""
    from tests.support import Mailbox

    box = Mailbox()
    box.start()
    yield box
    box.stop()


# -- CI: nothing may skip ------------------------------------------------------------------------
_skipped: list[str] = []


def pytest_runtest_logreport(report: Any) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if IN_CI and _skipped:
        terminalreporter.write_line(
            f"CI=true: {len(_skipped)} test(s) skipped, which fails the run (every test must run here)",
            red=True,
        )


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if IN_CI and _skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
