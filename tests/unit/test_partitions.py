"""Partitions of the event streams by case: stable, complete, and the same for every source."""

from __future__ import annotations

import uuid
from collections import Counter
from types import SimpleNamespace

from shared.partitions import case_key, partition_of, preferred, source_streams, stream_name
from shared.topology import SUBSCRIPTIONS, service_event_queues


def test_a_case_has_one_partition_in_every_source_and_the_cases_spread_over_all():
    case_id = uuid.uuid4()
    share = SimpleNamespace(case_id=case_id, originator_id=uuid.uuid4())  # an event about the case
    case = SimpleNamespace(originator_id=case_id)  # the case's own event
    assert partition_of(case_key(share), 8) == partition_of(case_key(case), 8)
    # CRC-32, not Python's salted hash: every process and release agrees.
    assert partition_of("4f9e2c1a-0000-4000-8000-000000000000", 8) == partition_of(
        "4f9e2c1a-0000-4000-8000-000000000000", 8
    )
    spread = Counter(partition_of(str(uuid.uuid4()), 8) for _ in range(4000))
    assert set(spread) == set(range(8)) and min(spread.values()) > 350


def test_one_partition_is_the_whole_log_as_before():
    assert partition_of(str(uuid.uuid4()), 1) == 0
    assert stream_name("data_sharing", 0, 1) == "data_sharing"
    assert source_streams("data_sharing", 1) == ["data_sharing"]
    assert source_streams("data_sharing", 3) == ["data_sharing.p0", "data_sharing.p1", "data_sharing.p2"]


def test_replicas_prefer_disjoint_partitions_that_cover_all():
    taken = [preferred(8, replica, 3) for replica in range(3)]
    assert sorted(n for mine in taken for n in mine) == list(range(8))
    assert preferred(4, 0, 1) == [0, 1, 2, 3]


def test_each_partition_has_its_queue_bound_on_its_header_only():
    for service in SUBSCRIPTIONS:
        assert [q.name for q in service_event_queues(service)] == [f"keten.{service}.events"]
        queues = service_event_queues(service, 4)
        assert [q.name for q in queues] == [f"keten.{service}.events.{n}" for n in range(4)]
        for n, queue in enumerate(queues):
            [binding] = queue.bindings
            assert binding.exchange.name == f"keten.{service}.partitions"
            assert binding.arguments == {"x-match": "all", "keten-partition": str(n)}
            assert queue.queue_arguments["x-single-active-consumer"] is True
