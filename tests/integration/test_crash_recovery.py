"""A service process killed (SIGKILL) while cases are being registered loses nothing that was
accepted, and nothing is applied twice once it is back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from keten.children import stop_with_parent
from keten.demo import CITIZEN, register_case_command
from shared.config import Settings
from tests.conftest import free_port
from tests.support import agency_credentials, eventually, signed_post

pytestmark = pytest.mark.integration


@contextmanager
def keten_process(env: dict[str, str], *services: str) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        [sys.executable, "-m", "keten.cli", "run", *services],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=stop_with_parent,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code in (200, 503):
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def overview_case_ids(base_url: str) -> list[str]:
    token = requests.post(f"{base_url}/api/citizen/session", json={"bsn": CITIZEN["bsn"]}, timeout=5).json()[
        "token"
    ]
    overview = requests.get(
        f"{base_url}/api/citizen/overview", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert "cases" in overview.json(), overview.text
    return [case["case_id"] for case in overview.json()["cases"]]


def test_killing_the_registering_service_mid_stream_loses_no_accepted_case(production_env):
    front = {**production_env, "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}"}
    base_url = f"http://{front['GATEWAY_ADDRESS']}"
    accepted: list[str] = []
    attempted: list[str] = []
    utrecht = agency_credentials(Settings.from_env(production_env), "gemeente-utrecht")

    def register_some(count: int) -> None:
        for _ in range(count):
            case_id = str(uuid.uuid4())
            attempted.append(case_id)
            try:
                response = signed_post(
                    base_url, "/api/cases", register_case_command(case_id), utrecht, timeout=5
                )
            except requests.RequestException:
                continue
            if response.status_code == 201:
                accepted.append(case_id)

    with keten_process(production_env, "consent", "data_sharing", "notification", "retention"):
        with keten_process(front, "case_registration", "gateway") as registering:
            wait_for(f"{base_url}/health")
            register_some(15)
            registering.send_signal(signal.SIGKILL)  # no chance to relay, ack or close anything
            registering.wait(timeout=10)
        with keten_process(front, "case_registration", "gateway"):
            wait_for(f"{base_url}/health")
            register_some(10)
            seen = eventually(
                lambda: set(accepted) <= set(ids := overview_case_ids(base_url)) and ids, timeout=30
            )

    assert len(accepted) >= 20
    assert len(seen) == len(set(seen)), "a case was applied twice"
    assert set(seen) <= set(attempted)
