"""What a person sees when a ``keten`` command cannot do its work: one line that says what is
wrong and what to do, never a traceback, and never a password. Run as a person runs it: the
installed ``keten`` in a process of its own, against this machine's real RabbitMQ and
PostgreSQL (or a port where nothing listens)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from shared.agencies import ensure_local_credentials
from shared.config import Settings, generate_secret
from tests.conftest import RABBIT_HOST, Rabbit, free_port

KETEN = str(Path(sys.executable).with_name("keten"))
pytestmark = pytest.mark.integration


def keten(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "KETEN_LOG_FORMAT": "text"}
    return subprocess.run(
        [KETEN, *args], env={**base, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The failure as the person reads it: exit code not 0, one line on stderr, no traceback."""
    assert result.returncode != 0, result.stdout
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def platform_env(amqp_uri: str, database_url: str, schema: str) -> dict[str, str]:
    return {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": database_url,
        "DATABASE_SCHEMA": schema,
        "KETEN_MASTER_KEY": generate_secret(),
        "KETEN_PSEUDONYM_SECRET": generate_secret(),
    }


def schema_exists(postgres_dsn: str, schema: str) -> bool:
    with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,))
        return cur.fetchone() is not None


@pytest.fixture
def fresh_schema(postgres_dsn: str) -> Any:
    schema = f"test_cli_{uuid.uuid4().hex[:10]}"
    yield schema
    with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_migrate_without_the_vhost_says_to_create_it_and_leaves_the_database_alone(
    rabbit_api: str, postgres_dsn: str, fresh_schema: str
):
    vhost = f"keten-missing-{uuid.uuid4().hex[:8]}"
    env = platform_env(f"amqp://guest:guest@{RABBIT_HOST}:5672/{vhost}", postgres_dsn, fresh_schema)
    line = one_line(keten("migrate", env=env))
    assert f"no vhost '{vhost}'" in line
    assert f"rabbitmqctl add_vhost {vhost}" in line
    assert not schema_exists(postgres_dsn, fresh_schema), "migrate touched the database first"


def test_migrate_with_a_wrong_broker_password_names_the_setting_and_not_the_password(
    rabbit: Rabbit, postgres_dsn: str, fresh_schema: str
):
    uri = rabbit.amqp_uri.replace("guest:guest@", "guest:not-the-password@")
    line = one_line(keten("migrate", env=platform_env(uri, postgres_dsn, fresh_schema)))
    assert "refused" in line and "AMQP_URI" in line
    assert "not-the-password" not in line
    assert not schema_exists(postgres_dsn, fresh_schema)


def test_migrate_with_no_broker_says_where_it_looked(postgres_dsn: str, fresh_schema: str):
    port = free_port()
    env = platform_env(f"amqp://guest:guest@127.0.0.1:{port}/keten", postgres_dsn, fresh_schema)
    line = one_line(keten("migrate", env=env))
    assert f"no RabbitMQ answers at 127.0.0.1:{port}" in line and "AMQP_URI" in line
    assert not schema_exists(postgres_dsn, fresh_schema)


def test_migrate_with_the_database_down_says_where_it_looked(rabbit: Rabbit, fresh_schema: str):
    port = free_port()
    env = platform_env(rabbit.amqp_uri, f"postgresql://keten:secret-pw@127.0.0.1:{port}/keten", fresh_schema)
    line = one_line(keten("migrate", env=env))
    assert f"no PostgreSQL answers at 127.0.0.1:{port}" in line and "DATABASE_URL" in line
    assert "secret-pw" not in line


def test_migrate_without_the_database_says_to_create_it(rabbit: Rabbit, postgres_dsn: str, fresh_schema: str):
    database = f"keten_missing_{uuid.uuid4().hex[:8]}"
    url = postgres_dsn.rsplit("/", 1)[0] + f"/{database}"
    line = one_line(keten("migrate", env=platform_env(rabbit.amqp_uri, url, fresh_schema)))
    assert f'database "{database}" does not exist' in line and "createdb" in line


def test_purge_with_the_database_down_is_one_line(fresh_schema: str):
    port = free_port()
    env = platform_env(
        f"amqp://guest:guest@127.0.0.1:{free_port()}/keten",
        f"postgresql://keten@127.0.0.1:{port}/keten",
        fresh_schema,
    )
    for command in (["purge", "--dry-run"], ["rewrap-keys", "--check"]):
        line = one_line(keten(*command, env=env))
        assert f"no PostgreSQL answers at 127.0.0.1:{port}" in line, command


def test_the_demo_against_no_platform_says_how_to_start_one(tmp_path: Path):
    ensure_local_credentials(Settings.from_env({"KETEN_VAR_DIR": str(tmp_path)}), ["gemeente-utrecht"])
    url = f"http://127.0.0.1:{free_port()}"
    line = one_line(keten("demo", "--url", url, env={"KETEN_VAR_DIR": str(tmp_path)}))
    assert f"no platform answers at {url}" in line and "make run" in line


def test_the_demo_without_credentials_names_both_ways_to_get_them(tmp_path: Path):
    env = {"KETEN_VAR_DIR": str(tmp_path)}
    line = one_line(keten("demo", "--url", f"http://127.0.0.1:{free_port()}", env=env))
    assert "no credentials for gemeente-utrecht" in line
    assert "keten agency add gemeente-utrecht" in line and "--throwaway-key" in line


def test_the_probe_of_a_process_that_does_not_run_is_one_line():
    line = one_line(keten("probe", "ready", env={"OPS_PORT": str(free_port())}))
    assert "no answer" in line


def test_a_throwaway_key_needs_the_platforms_database(tmp_path: Path):
    env = {"KETEN_VAR_DIR": str(tmp_path)}
    line = one_line(keten("demo", "--url", f"http://127.0.0.1:{free_port()}", "--throwaway-key", env=env))
    assert "DATABASE_URL" in line
