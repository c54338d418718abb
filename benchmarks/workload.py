"""The fixed benchmark workload: P pipelines, each created once, then start/stop cycles
(StopPipeline with force=true, so no reconciler is needed) until N commands in all.

Commands on one pipeline keep their order (one Kafka key each), so every command is
accepted: a realistic mix of aggregate loads, guards, events and command records.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

from contracts import Command, CreateConfig, CreatePipeline, StartPipeline, StopPipeline
from contracts.config_document import AdapterStep, ConfigDocument, Inbound, InitMessage, RouteSpec

# One pass-through route: the normalized document (defaults filled in), as the config
# stores it.
CONFIG_DOCUMENT = ConfigDocument(
    version="1.0",
    routes={
        "ingest": RouteSpec(
            name="ingest",
            inbound=Inbound(topic="bench.in"),
            adapters=[AdapterStep(type="pass_through")],
        )
    },
    init_message=InitMessage(route="ingest"),
).model_dump(mode="json")


def setup_commands() -> tuple[CreateConfig, UUID]:
    config = CreateConfig(config_id=uuid4(), name="bench", document=CONFIG_DOCUMENT)
    return config, config.config_id


def commands(
    pipelines: int, total: int, config_id: UUID, prefix: str = "bench"
) -> Iterator[Command]:
    """`total` commands: creates first, then rounds of start/stop over all pipelines."""
    names = [f"{prefix}-{i:05d}" for i in range(pipelines)]
    sent = 0
    for name in names:
        if sent == total:
            return
        yield CreatePipeline(name=name, config_id=config_id)
        sent += 1
    round_ = 0
    while sent < total:
        for name in names:
            if sent == total:
                return
            if round_ % 2 == 0:
                yield StartPipeline(pipeline_name=name)
            else:
                yield StopPipeline(pipeline_name=name, force=True)
            sent += 1
        round_ += 1
