"""The publisher sends a batch's frames in one write: on RabbitMQ every message of the batch
arrives whole, in order, with its headers and properties, and each is confirmed."""

from __future__ import annotations

import uuid

import pytest
from kombu import Connection, Queue

from shared.contracts.envelope import OutgoingMessage
from shared.publishing import ConfirmingPublisher

pytestmark = pytest.mark.integration


class CountedWrites:
    """The socket's ``sendall`` as py-amqp's transport holds it, counting the writes."""

    def __init__(self, sendall):
        self.sendall = sendall
        self.__self__ = sendall.__self__  # still the socket's own write
        self.sizes: list[int] = []

    def __call__(self, data):
        self.sizes.append(len(data))
        return self.sendall(data)


def connected_to_queue(amqp_uri: str, name: str) -> tuple[ConfirmingPublisher, Queue]:
    """A connected publisher and a quorum queue ``name`` (like Keten's) it publishes to."""
    publisher = ConfirmingPublisher(amqp_uri)
    publisher.connect()
    queue = Queue(name, durable=True, auto_delete=False, queue_arguments={"x-queue-type": "quorum"})
    queue(publisher.channel).declare()
    return publisher, queue


def test_a_batch_goes_out_in_one_write_and_arrives_whole_and_in_order(rabbit):
    publisher, queue = connected_to_queue(rabbit.amqp_uri, "publishing-test")
    # Sizes about the frame limit and past it (a body split over frames), among small ones.
    sizes = [10, 900, 131_000, 5, 300_000, 2_000]
    batch = [
        OutgoingMessage(
            routing_key=queue.name,
            body=bytes([65 + n]) * size,
            headers={"keten-test": n},
            message_id=str(uuid.uuid4()),
            correlation_id=f"c{n}",
            exchange="",
        )
        for n, size in enumerate(sizes)
    ]
    transport = publisher.connection.connection.transport
    writes = CountedWrites(transport._write)
    transport._write = writes
    publisher.publish(batch)
    assert len(writes.sizes) == 1
    publisher.close()
    with Connection(rabbit.amqp_uri) as connection:
        taken = queue(connection.channel())
        received = [taken.get(no_ack=True) for _ in batch]
        assert taken.get(no_ack=True) is None
    assert [m.body.encode() for m in received] == [m.body for m in batch]  # kombu decodes utf-8
    assert [m.headers["keten-test"] for m in received] == list(range(len(batch)))
    assert [m.properties["message_id"] for m in received] == [m.message_id for m in batch]
    assert [m.properties["correlation_id"] for m in received] == [m.correlation_id for m in batch]


def test_the_next_batch_on_the_same_connection_goes_out_too(rabbit):
    publisher, queue = connected_to_queue(rabbit.amqp_uri, "publishing-again")
    for round_ in range(3):
        publisher.publish(
            [
                OutgoingMessage(
                    routing_key=queue.name,
                    body=f"{round_}-{n}".encode(),
                    headers={},
                    message_id=str(n),
                    exchange="",
                )
                for n in range(4)
            ]
        )
    publisher.close()
    with Connection(rabbit.amqp_uri) as connection:
        taken = queue(connection.channel())
        bodies = [taken.get(no_ack=True).body for _ in range(12)]
    assert bodies == [f"{r}-{n}" for r in range(3) for n in range(4)]
