"""`pipelines events tail`: the lifecycle events as JSON lines, read by a group-less
consumer engine over every partition of the events topic (no group: no join delay, and
nothing committed on anyone's behalf)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from services.entrypoints.cli.environment import client_settings, unreachable

if TYPE_CHECKING:
    from services.adapters.kafka.engine import Batch
    from services.settings import Settings


def tail(
    from_beginning: Annotated[
        bool, typer.Option(help="Start at the oldest event, not at new ones.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
) -> None:
    """Print lifecycle events as JSON lines as they arrive (Ctrl-C stops)."""
    settings = client_settings()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(settings, from_beginning, limit))


async def _tail(settings: Settings, from_beginning: bool, limit: int | None) -> None:
    from contracts.cloudevents import decode_event
    from contracts.errors import WireError
    from services.adapters.kafka import engine as kafka_engine

    printed = 0

    def done() -> bool:
        return limit is not None and printed >= limit

    async def print_events(batch: Batch) -> None:
        nonlocal printed
        for record in batch.records:
            if done():
                break
            try:
                event = decode_event(record.value, list(record.headers or ())).event
            except WireError as error:  # skipped: retrying would only fail again
                where = f"{record.topic}[{record.partition}]@{record.offset}"
                typer.echo(f"skipped an undecodable event at {where}: {error}", err=True)
                continue
            typer.echo(orjson.dumps(event.model_dump(mode="json")).decode())
            printed += 1
        sys.stdout.flush()
        if done():
            reader.request_stop()

    started_ms = int(time.time() * 1000)
    reader = kafka_engine.ConsumerEngine(
        settings,
        name="events-tail",
        topics=[settings.topics.events],
        handle=print_events,
        group_id=None,
        membership=kafka_engine.Membership.ASSIGNED,
        commit=False,
        batch_wait_ms=1000,
        position=(
            kafka_engine.from_beginning
            if from_beginning
            else kafka_engine.since(lambda: started_ms)
        ),
    )
    try:
        await reader.start()
    except RuntimeError as error:  # aiokafka's KafkaError, or the events topic is missing
        raise unreachable(error) from None
    if done():
        await reader.stop()
        return
    await reader.run()
