"""A route's topics, as both route runtimes (the orchestrator's route workers and the
reconciler's pipeline workers) treat them: the service's own topics are refused, missing
ones are created before the worker reads, and a batch's outputs are all acknowledged
before its offsets may be committed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from services.settings import Settings

EnsureTopics = Callable[[Sequence[str]], Awaitable[None]]
"""Creates whichever of the named topics are missing (services.adapters.kafka.clients'
`topic_creator`)."""


def refuse_service_topics(settings: Settings, route_id: str, topics: Iterable[str]) -> None:
    """ValueError if the route reads or writes one of the service's own topics (commands,
    events, ...): those carry the service's records, never a route's messages."""
    reserved = set(settings.topics.all()) & set(topics)
    if reserved:
        raise ValueError(f"route {route_id!r} uses the service's own topics {sorted(reserved)}")


async def acknowledged(deliveries: Iterable[Awaitable[Any]]) -> None:
    """Wait for every delivery (all sent first, so the producer batches them); raises the
    first failure once all have settled."""
    results = await asyncio.gather(*deliveries, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


__all__ = ["EnsureTopics", "acknowledged", "refuse_service_topics"]
