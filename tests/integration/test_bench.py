"""The benchmark, at tiny sizes, on the real RabbitMQ and PostgreSQL: it runs every part and
writes every result. A check that it works, not of how fast anything is."""

from __future__ import annotations

import json

import pytest

from keten.bench.benchmark import RESULT_KEYS, Sizes, run
from tests.conftest import RABBIT_HOST

pytestmark = pytest.mark.integration

TINY = Sizes(
    shares=20,
    cases=10,
    latency_seconds=1.0,
    overview_citizens=20,
    overview_events=100,
    overview_queries=10,
    embedded_shares=10,
)


def test_the_benchmark_runs_every_part_on_the_real_services_and_writes_every_result(
    rabbit_api, postgres_dsn, tmp_path
):
    printed: list[str] = []
    path = tmp_path / "results.json"

    run(
        TINY,
        out=printed.append,
        results_path=path,
        amqp=f"amqp://guest:guest@{RABBIT_HOST}:5672/",
        dsn=postgres_dsn,
    )

    results = json.loads(path.read_text())
    assert set(RESULT_KEYS) <= set(results)
    assert results["sizes"]["shares"] == 20 and results["purge_cases"] == 10
    for key in ("raw_per_s", "e2e_shares_per_s", "embedded_shares_per_s", "purge_10k_s"):
        assert results[key] > 0, key
    assert results["ratio_e2e_to_raw"] == pytest.approx(results["e2e_shares_per_s"] / results["raw_per_s"])
    latency = results["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert 0 < results["overview_p50_ms"] <= results["overview_p99_ms"]
    assert any(line.startswith("Keten end to end") and "ratio" in line for line in printed), "the table"
