"""The gateway on RabbitMQ and PostgreSQL: a request replayed to another replica is refused (the
nonces are in the database), and a database that goes away is a 503 with Retry-After, from
which the platform recovers by itself, never a 500.

The platform connects as a role of its own, so the test can end that role's connections and
forbid new ones (the database "went away") without touching anything else on the server.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import requests

from keten.demo import CITIZEN, register_case_command
from keten_client import signed_http_headers
from tests.conftest import free_port
from tests.support import eventually, running_platform, signed_post

pytestmark = pytest.mark.integration


@pytest.fixture
def own_role(postgres_dsn, pg_schema):
    """A login role that owns the test's schema; yields (its DSN, a superuser connection)."""
    role = f"keten_fault_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(postgres_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE ROLE "{role}" LOGIN')
        cur.execute(f'CREATE SCHEMA "{pg_schema}" AUTHORIZATION "{role}"')
        cur.execute("SELECT current_database()")
        database = cur.fetchone()[0]
        cur.execute(f'GRANT CREATE ON DATABASE "{database}" TO "{role}"')  # CREATE SCHEMA IF NOT EXISTS
    parts = urlsplit(postgres_dsn)
    dsn = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))
    yield role, dsn, admin
    with admin.cursor() as cur:
        cur.execute(f'ALTER ROLE "{role}" LOGIN')
        _end_connections(cur, role)
        cur.execute(f'DROP SCHEMA IF EXISTS "{pg_schema}" CASCADE')
        cur.execute(f'DROP OWNED BY "{role}" CASCADE')  # its grant too
        cur.execute(f'DROP ROLE "{role}"')
    admin.close()


def _end_connections(cur, role: str) -> int:
    """Ends ``role``'s sessions and waits until their backends have exited: pg_terminate_backend
    only signals them, and a connection whose backend has not yet gone looks alive to its pool."""
    cur.execute("SELECT pid FROM pg_stat_activity WHERE usename = %s", (role,))
    pids = [pid for (pid,) in cur.fetchall()]
    cur.execute("SELECT count(*) FROM unnest(%s::int[]) AS pid WHERE pg_terminate_backend(pid)", (pids,))
    ended = int(cur.fetchone()[0])

    def exited() -> bool:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s::int[])", (pids,))
        return cur.fetchone()[0] == 0

    eventually(exited, timeout=10, interval=0.02)
    return ended


def _register(platform, credentials) -> requests.Response:
    return signed_post(platform.base_url, "/api/cases", register_case_command(str(uuid.uuid4())), credentials)


def test_a_request_replayed_to_another_gateway_replica_is_refused(production_env):
    with running_platform(production_env) as first:
        utrecht = first.credentials()
        second_env = {**production_env, "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}"}
        with running_platform(second_env, ["gateway"]) as second:
            for one, other in ((first, second), (second, first)):
                body = register_case_command(str(uuid.uuid4()))
                raw = requests.models.complexjson.dumps(body).encode()
                headers = signed_http_headers(utrecht, "POST", "/api/cases", raw)
                accepted = requests.post(f"{one.base_url}/api/cases", data=raw, headers=headers, timeout=10)
                replayed = requests.post(f"{other.base_url}/api/cases", data=raw, headers=headers, timeout=10)
                assert accepted.status_code == 201
                assert (replayed.status_code, replayed.json()["error"]["code"]) == (403, "request_replayed")


def test_a_database_that_goes_away_is_a_503_with_retry_after_then_the_platform_recovers(
    production_env, own_role
):
    role, dsn, admin = own_role
    with running_platform({**production_env, "DATABASE_URL": dsn}) as platform:
        utrecht = platform.credentials()
        assert _register(platform, utrecht).status_code == 201
        token = requests.post(
            f"{platform.base_url}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=10
        )
        citizen = {"Authorization": f"Bearer {token.json()['token']}"}

        # Its connections ended (a restart, an operator, a failover): the next request does
        # not notice, the pool replaces the dead connections before using them.
        with admin.cursor() as cur:
            assert _end_connections(cur, role) > 0
        assert _register(platform, utrecht).status_code == 201

        # Gone for longer (no new connection possible): a short retry, then 503 with Retry-After.
        with admin.cursor() as cur:
            cur.execute(f'ALTER ROLE "{role}" NOLOGIN')
            _end_connections(cur, role)
        started = time.perf_counter()
        refused = _register(platform, utrecht)
        answered_in = time.perf_counter() - started
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "database_unavailable"
        assert int(refused.headers["Retry-After"]) > 0
        assert answered_in < 5.0, f"503 after {answered_in:.1f}s"
        overview = requests.get(f"{platform.base_url}/api/citizen/overview", headers=citizen, timeout=10)
        assert (overview.status_code, overview.json()["error"]["code"]) == (503, "database_unavailable")
        assert int(overview.headers["Retry-After"]) > 0

        # Back: the platform recovers by itself, without a restart.
        with admin.cursor() as cur:
            cur.execute(f'ALTER ROLE "{role}" LOGIN')
        back = time.perf_counter()
        eventually(lambda: _register(platform, utrecht).status_code == 201, timeout=30, interval=0.2)
        overview = requests.get(f"{platform.base_url}/api/citizen/overview", headers=citizen, timeout=10)
        assert overview.status_code == 200
        print(
            f"database gone: 503 after {answered_in:.2f}s; recovered {time.perf_counter() - back:.2f}s after"
        )
