"""Partitions of the event streams by case, so that replicas of a consumer share the work.

With ``KETEN_EVENT_PARTITIONS`` = P > 1, every publishing service splits its notification log
into P streams by the case each event is about (``partition_of``: a hash of the case id), named
``<service>.p<n>``. Each stream keeps its own chain of positions (``previous``), so a consumer
checks order, finds gaps and catches up per partition exactly as it does for a whole log. Every
event of one case is in the same partition of every source.

On the broker each consuming service has P quorum queues ``keten.<service>.events.<n>`` with
single active consumer, fed through a headers exchange ``keten.<service>.partitions`` on the
event's ``keten-partition`` header: one queue per stream, so each partition is consumed in
order by one replica at a time while replicas take different partitions. A replica first
subscribes to the partitions it prefers (``preferred``: n mod ``KETEN_REPLICAS`` =
``KETEN_REPLICA``), then, a little later, to all others as a standby: the broker makes it
active there only when the preferred replica is gone. P = 1 (the default) is one stream per
service and one queue per consumer, as before.
"""

from __future__ import annotations

import zlib
from typing import Any

#: The header the broker routes an event to its partition's queue by.
PARTITION_HEADER = "keten-partition"


def case_key(domain_event: Any) -> str:
    """What an event is partitioned by: its case (the aggregate itself for a case's events)."""
    return str(getattr(domain_event, "case_id", None) or domain_event.originator_id)


def partition_of(key: str, partitions: int) -> int:
    """The partition of a case: stable across processes, releases and languages (CRC-32)."""
    return zlib.crc32(key.encode()) % partitions if partitions > 1 else 0


def stream_name(source: str, partition: int, partitions: int) -> str:
    """The stream a partition of ``source``'s log is published as (the whole log: ``source``)."""
    return source if partitions <= 1 else f"{source}.p{partition}"


def source_streams(source: str, partitions: int) -> list[str]:
    return [stream_name(source, n, partitions) for n in range(max(1, partitions))]


def preferred(partitions: int, replica: int, replicas: int) -> list[int]:
    """The partitions replica ``replica`` of ``replicas`` takes first."""
    replicas = max(1, replicas)
    return [n for n in range(max(1, partitions)) if n % replicas == replica % replicas]
