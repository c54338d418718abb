"""What the orchestrator and the reconciler open when they start, each thing's closing
pushed on the role's exit stack as it opens (services.runtimes.sweep.SweepingRole)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Protocol, TypeVar

from aiokafka import AIOKafkaProducer

from services.adapters.kafka.clients import make_producer
from services.adapters.kafka.command_bus import CommandBus
from services.settings import Settings


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


async def open_store(exits: AsyncExitStack, opener: Callable[[str], C], url: str) -> C:
    """`opener(url)` (a synchronous store), off the event loop; closed off it too."""
    store = await asyncio.to_thread(opener, url)
    exits.push_async_callback(asyncio.to_thread, store.close)
    return store


async def open_command_bus(
    exits: AsyncExitStack, settings: Settings, source: str
) -> tuple[AIOKafkaProducer, CommandBus]:
    """A started producer (the role's route workers share it) and a command bus on it
    that publishes without waiting for results (a role's next sweep decides again)."""
    producer = make_producer(settings)
    await producer.start()
    exits.push_async_callback(producer.stop)
    bus = CommandBus(settings, source=source, producer=producer)
    await bus.start(results=False)
    exits.push_async_callback(bus.stop)
    return producer, bus


__all__ = ["Closable", "open_command_bus", "open_store"]
