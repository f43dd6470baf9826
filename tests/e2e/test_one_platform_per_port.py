"""One platform per port: a second ``keten run`` on a port in use stops with one line, and no
other process can slip in beside a running gateway (no SO_REUSEPORT), so logins never land on
another platform at random."""

from __future__ import annotations

import errno
import socket

import pytest
import requests

from tests.support import keten, running_platform

pytestmark = pytest.mark.e2e


def test_a_second_platform_on_a_port_in_use_fails_with_one_line(embedded_env, tmp_path):
    with running_platform(embedded_env) as first:
        second = keten("run", env={**embedded_env, "KETEN_VAR_DIR": str(tmp_path / "second")}, timeout=60)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert "GATEWAY_ADDRESS" in lines[0] and "in use" in lines[0]
        assert requests.get(f"{first.base_url}/health", timeout=10).status_code == 200, "the first runs on"


def test_no_socket_can_share_the_gateways_port(embedded_env):
    with running_platform(embedded_env, ["notification", "gateway"]) as platform:
        host, port = platform.settings.gateway_address.split(":")
        intruder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            with pytest.raises(OSError) as refused:
                intruder.bind((host, int(port)))
            assert refused.value.errno == errno.EADDRINUSE
        finally:
            intruder.close()
