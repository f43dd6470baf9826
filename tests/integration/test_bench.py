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
    assert results["timed_out"] == {}
    # What a share cost: the services' CPU and their backends', and round trips (SQL transactions
    # and messages: at least the command, the event and its delivery to two consumers).
    cost = results["cost"]
    assert results["cpu_ms_per_share"] == pytest.approx(
        cost["keten_cpu_ms_per_share"] + cost["letters_cpu_ms_per_share"] + cost["postgres_cpu_ms_per_share"]
    )
    assert cost["keten_cpu_ms_per_share"] > 0 and cost["postgres_cpu_ms_per_share"] > 0
    # The letters (every citizen of the benchmark gets one) laid out by `keten letters render`
    # as a process of its own, as the CronJob does; its next run finds none.
    letters = results["letters"]
    assert 0 < letters["count"] <= results["e2e_notified"]
    assert letters["cpu_ms"] > 0 and cost["letters_cpu_ms_per_share"] > 0
    assert letters["cpu_ms_per_letter"] == pytest.approx(letters["cpu_ms"] / letters["count"])
    assert letters["laid_out_again"] == 0 and letters["empty_run_cpu_ms"] > 0
    assert any(line.startswith("letters (keten letters render") for line in printed), "its row"
    trips = cost["round_trips_per_share"]
    assert trips["broker_published"] >= 2 and trips["broker_delivered"] >= 2 and trips["db_transactions"] >= 2
    assert results["round_trips_per_share"] == pytest.approx(trips["total"])
    assert results["idle"]["seconds"] > 0
    # The same end to end one message per transaction, for what batching saves.
    assert results["unbatched"]["cpu_ms_per_share"] > 0 and results["unbatched"]["round_trips_per_share"] > 0
    assert results["unbatched"]["letters"]["count"] > 0
    # Two replicas of notification over the partitions: each its own, nothing lost, doubled or
    # out of order within a case.
    replicas = results["partitions"]
    assert replicas["disjoint"] and replicas["all_taken"], replicas["replica_partitions"]
    assert (replicas["lost"], replicas["doubled"], replicas["cases_reordered"]) == (0, 0, 0)
