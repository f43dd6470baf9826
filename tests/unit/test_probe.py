"""``keten probe``, every container's healthcheck: it answers from the operations endpoint, and
fast, because it loads nothing of the platform (13-16 s under load when it imported everything)."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

KETEN = str(Path(sys.executable).with_name("keten"))
PLATFORM = {
    "eventlet",
    "nameko",
    "kombu",
    "amqp",
    "psycopg2",
    "eventsourcing",
    "requests",
    "shared",
    "services",
}


class Endpoint(BaseHTTPRequestHandler):
    """An operations endpoint whose process is alive but not ready."""

    def do_GET(self) -> None:
        status = {"/livez": 200, "/readyz": 503}.get(self.path, 404)
        body = b'{"ok": true}' if status == 200 else b'{"ok": false, "broker": "down"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ops_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def probe(which: str, port: int) -> subprocess.CompletedProcess[str]:
    env = {"OPS_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [KETEN, "probe", which], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_live_process_passes_and_one_that_is_not_ready_fails_in_one_line(ops_port: int):
    live = probe("live", ops_port)
    assert live.returncode == 0 and '"ok": true' in live.stdout
    ready = probe("ready", ops_port)
    assert ready.returncode == 1
    assert '"broker": "down"' in ready.stdout  # the report, for the health log
    assert ready.stderr.strip().splitlines() == [
        f"keten probe: not ready (http://127.0.0.1:{ops_port}/readyz answered 503)"
    ]


def test_the_probe_loads_nothing_of_the_platform(ops_port: int):
    code = (
        "import sys\n"
        "from keten.cli import main\n"
        "main(['probe', 'live'])\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"OPS_PORT": str(ops_port)},
        capture_output=True,
        text=True,
        check=False,
    )
    loaded = set(result.stdout.split())
    assert "keten" in loaded
    assert not loaded & PLATFORM


def test_the_probe_costs_a_fraction_of_a_cpu_second(ops_port: int):
    """Counted in CPU seconds of the probe's process, which do not grow with the machine's load as
    wall time does (a healthcheck's timeout is the wall-time bound; tests/deploy/test_stack.py)."""
    spent = []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert probe("live", ops_port).returncode == 0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        spent.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    assert statistics.median(spent) < 0.5, spent
