"""Structured logs as an operator reads them: one JSON object a line, each naming its service
and the correlation id of the work it belongs to."""

from __future__ import annotations

import io
import json
import logging
import sys

import eventlet
import pytest

from shared import logs
from tests.support import json_logs


@pytest.fixture
def captured():
    with json_logs() as stream:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_a_json_line_with_its_service_correlation_id_and_fields(captured):
    with logs.log_context("data_sharing", "req-1234567"):
        logging.getLogger("keten.test").info("decided %s", "share", extra={"outcome": "shared"})
    [record] = captured()
    assert record["message"] == "decided share"
    assert (record["level"], record["logger"]) == ("INFO", "keten.test")
    assert (record["service"], record["correlation_id"], record["outcome"]) == (
        "data_sharing",
        "req-1234567",
        "shared",
    )
    assert record["timestamp"].endswith("+00:00")


def test_concurrent_work_keeps_each_its_own_correlation_id(captured):
    def work(correlation_id: str) -> None:
        logs.bind("notification", correlation_id)
        eventlet.sleep(0.001)  # let the other green threads run in between
        logging.getLogger("keten.test").info("handled")

    pool = eventlet.GreenPool()
    for correlation_id in ("first-000", "second-000", "third-000"):
        pool.spawn(work, correlation_id)
    pool.waitall()
    assert sorted(r["correlation_id"] for r in captured()) == ["first-000", "second-000", "third-000"]
    assert logs.correlation_var.get() is None, "the main thread's context is untouched"


def test_a_refusal_nameko_logs_as_an_expected_error_is_one_info_line_without_traceback(captured):
    try:
        raise ValueError("unknown_case: no such case")
    except ValueError as exc:
        logging.getLogger("nameko.containers").warning(
            "(expected) error handling worker %s: %s", "<worker>", exc, exc_info=True
        )
    [record] = captured()
    assert record["level"] == "INFO"
    assert "exc_info" not in record


def test_the_web_servers_access_lines_with_client_addresses_are_not_logged(captured):
    logging.getLogger("nameko.web.server").info('192.0.2.7 - - "GET /api/citizen/overview" 200')
    assert captured() == []


def test_logging_to_stderr_writes_where_stderr_is_now_not_where_it_was(monkeypatch):
    """A service's log goes to the process's stderr as it is when the line is written: a
    stream swapped in later (a test's capture) and closed since is never written to."""
    root = logging.getLogger()
    kept = (list(root.handlers), root.level)
    first, second = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr(sys, "stderr", first)
        logs.configure()
        first.close()
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("keten.test").warning("relay wake-up: %s", "OperationalError")
    finally:
        root.handlers[:] = kept[0]
        root.setLevel(kept[1])
    assert json.loads(second.getvalue())["message"] == "relay wake-up: OperationalError"
