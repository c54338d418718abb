"""Assigning every partition of some topics, and where an assigned reader starts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

Positioner = Callable[[AIOKafkaConsumer, list[TopicPartition]], Awaitable[None]]


async def all_partitions(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics` (of a started consumer); raises for a topic that has
    none yet, rather than reading nothing."""
    await consumer.topics()  # loads the metadata partitions_for_topic reads
    tps: list[TopicPartition] = []
    for topic in topics:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise RuntimeError(f"topic {topic!r} has no partitions (create it first)")
        tps.extend(TopicPartition(topic, p) for p in sorted(partitions))
    return tps


def since(ms: Callable[[], int]) -> Positioner:
    """Position every partition at the first record stamped at or after `ms()` (end offsets
    are wrong on the embedded broker, so never `seek_to_end` when a time answers)."""

    async def position(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        # Nothing is fetched while positioning: a fetch in flight (a long poll of up to
        # fetch_max_wait_ms on an empty partition) holds up each offset lookup queued
        # behind it on the connection, 0.5 s per partition with `seek_to_end`.
        consumer.pause(*tps)
        try:
            found = await consumer.offsets_for_times(dict.fromkeys(tps, ms()))
            # Nothing that recent: Apache Kafka answers None, the embedded broker offset
            # 0 with timestamp -1 (which would replay the partition). The end is right
            # on Apache Kafka; the embedded broker answers an offset at or before its
            # true end (never past it).
            missing = [tp for tp in tps if (at := found.get(tp)) is None or at.timestamp < 0]
            ends = await consumer.end_offsets(missing) if missing else {}
            for tp in tps:
                consumer.seek(tp, ends[tp] if tp in ends else found[tp].offset)
        finally:
            consumer.resume(*tps)

    return position


def from_beginning(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> Awaitable[None]:
    return consumer.seek_to_beginning(*tps)  # type: ignore[no-any-return]


__all__ = ["Positioner", "all_partitions", "from_beginning", "since"]
