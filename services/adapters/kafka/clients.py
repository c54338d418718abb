"""aiokafka clients built from Settings, so every role connects the same way (SASL/SSL
included) and no role can turn on what the design forbids.

Producers are never idempotent or transactional: the embedded broker supports neither,
and correctness comes from idempotent handling (docs/architecture.md). `acks="all"`
still makes a sent record durable on every in-sync replica before its future resolves.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from services.adapters.kafka.embedded_broker import create_topics
from services.settings import Settings

log = logging.getLogger(__name__)

# Headers and the DLQ's reason headers ride on top of a message that was at the size
# limit; the producer must accept such a record rather than poison the batch.
_RECORD_HEADROOM_BYTES = 64 * 1024


def client_options(settings: Settings) -> dict[str, Any]:
    """Settings' connection options; refuses to guess a bootstrap server."""
    options = settings.kafka_client_options()
    if not options.get("bootstrap_servers"):
        raise ValueError(
            "No Kafka bootstrap servers configured (PIPELINES_KAFKA_BOOTSTRAP_SERVERS); "
            "start the embedded broker and pass its address first"
        )
    return options


def max_record_bytes(settings: Settings) -> int:
    """The largest record our producers send: a dead-lettered message of up to twice the
    limit (the broker let it in, so it may exceed ours) plus headers."""
    return 2 * settings.max_message_bytes + _RECORD_HEADROOM_BYTES


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        **client_options(settings),
        "acks": "all",
        "enable_idempotence": False,
        "max_request_size": max_record_bytes(settings),
        # Every sender here sends a whole batch (or one awaited command) before it awaits
        # the acknowledgements, so lingering would only add its delay to each batch.
        "linger_ms": 0,
        **overrides,
    }
    if options.get("enable_idempotence") or options.get("transactional_id"):
        raise ValueError(
            "Idempotent or transactional producers are not used (see docs/architecture.md)"
        )
    return AIOKafkaProducer(**options)


def make_consumer(
    settings: Settings,
    *,
    group_id: str | None,
    **overrides: Any,
) -> AIOKafkaConsumer:
    """A consumer with manual commits. Subscribe (or assign) after `start()`."""
    options: dict[str, Any] = {
        **client_options(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # One oversized record must still be fetchable, so it can be dead-lettered.
        "max_partition_fetch_bytes": max_record_bytes(settings),
    }
    if settings.kafka_fetch_wait_ms is not None:
        options["fetch_max_wait_ms"] = settings.kafka_fetch_wait_ms
    if group_id is not None and settings.kafka_session_timeout_ms is not None:
        options.update(session_options(settings.kafka_session_timeout_ms))
    options.update(overrides)
    return AIOKafkaConsumer(**options)


def session_options(session_timeout_ms: int) -> dict[str, int]:
    """A group session and a heartbeat three times in it (Kafka's advice): aiokafka beats
    from a task of the event loop, so a loop held up for a whole session (never the case
    here: the blocking work runs in threads) would cost a rebalance, and one late beat
    does not. Every beat is a request to the broker, which an idle process pays for."""
    return {
        "session_timeout_ms": session_timeout_ms,
        "heartbeat_interval_ms": max(100, session_timeout_ms // 3),
    }


def make_admin(settings: Settings, **overrides: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**{**client_options(settings), **overrides})


async def ensure_topics(settings: Settings) -> None:
    """Create the four topics with the configured partitions; existing ones stay as they are."""
    options = client_options(settings)
    bootstrap = options.pop("bootstrap_servers")
    await create_topics(
        bootstrap,
        settings.topics.all(),
        settings.partitions,
        replication_factor=settings.replication_factor,
        client_options=options,
    )


def topic_creator(settings: Settings) -> Callable[[Sequence[str]], Awaitable[None]]:
    """Creates whichever of the named topics are missing (partitions and replication as
    configured). Existing topics are looked up first, so a cluster that lets this client
    read but not create topics still works for topics an operator made."""

    async def ensure(names: Sequence[str]) -> None:
        admin = make_admin(settings)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
        finally:
            await admin.close()
        missing = [name for name in names if name not in existing]
        if missing:
            options = client_options(settings)
            bootstrap = options.pop("bootstrap_servers")
            await create_topics(
                bootstrap,
                missing,
                settings.partitions,
                replication_factor=settings.replication_factor,
                client_options=options,
            )
            log.info("Created topics %s", missing)

    return ensure


__all__ = [
    "client_options",
    "ensure_topics",
    "make_admin",
    "make_consumer",
    "make_producer",
    "max_record_bytes",
    "session_options",
    "topic_creator",
]
