"""The roles a `pipelines` process can play, and running several of them in one process.

A role is an async function `(settings, stop, heartbeat) -> None` that serves until
`stop` is set, calling `heartbeat()` as its loop goes round. `pipelines dev` runs every
role of ROLES in one process; `pipelines serve --role X` runs the named ones (one per
container in compose.yaml). Later issues add their roles to ROLES.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from projections.store import ReadStore
from services.adapters.command_records import recorder_env
from services.adapters.eventstore import EventStore, open_event_store
from services.adapters.kafka.clients import make_producer, topic_creator
from services.adapters.message_store import open_message_store
from services.adapters.stores import open_command_store
from services.entrypoints.health import Heartbeat
from services.entrypoints.http.server import run_api
from services.observability import exposition, tracing
from services.observability.trace_links import TraceLinks
from services.runtimes.command_handler import CommandConsumer
from services.runtimes.openlineage.emitter import LineageEmitter, lineage_emitter
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.orchestrator.liveness import open_gate
from services.runtimes.orchestrator.role import run_orchestrator
from services.runtimes.projector import run_projector
from services.runtimes.reconciler.role import run_reconciler
from services.runtimes.relay import Relay
from services.runtimes.replay_publisher import ReplayProgress, ReplayPublisher
from services.runtimes.retention import relay_retention
from services.service_layer.decider import Decider
from services.service_layer.handlers import HANDLERS
from services.service_layer.handling import ConfigUseReader, ExecutionGate
from services.service_layer.replay_plan import StoredMessages, Unfinished
from services.settings import Settings

log = logging.getLogger(__name__)

Role = Callable[[Settings, asyncio.Event, Callable[[], None]], Coroutine[Any, Any, None]]


def handler_decider(
    settings: Settings,
    store: EventStore,
    gate: ExecutionGate,
    stored: StoredMessages | None = None,
    unfinished: Unfinished | None = None,
    usage: ConfigUseReader | None = None,
) -> Decider:
    """The command handler's decider: every handler, the orchestrator gate, the timeout
    every new run gets (`PIPELINES_EXECUTION_TIMEOUT_S`) and, for replays, the message
    store the orchestrators write (`PIPELINES_MESSAGE_STORE`), the route ledger (lineage)
    and the replay size limit; for DeleteConfig, the read models (what uses a config)."""
    timeout = timedelta(seconds=settings.execution_timeout_s)
    return Decider(
        store,
        HANDLERS,
        gate=gate,
        run_timeout=timeout,
        stored=stored,
        unfinished=unfinished,
        replay_max_messages=settings.replay_max_messages,
        usage=usage,
    )


async def run_handler(
    settings: Settings, stop: asyncio.Event, heartbeat: Callable[[], None]
) -> None:
    """The command handler: commands topic -> decider -> event store, results, DLQ.

    RunConfig always passes the orchestrator gate here (services.runtimes.orchestrator.liveness)."""
    store = await asyncio.to_thread(open_command_store, settings.event_store_url)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(asyncio.to_thread, store.close)
        gate = await asyncio.to_thread(open_gate, settings)
        stack.push_async_callback(asyncio.to_thread, gate.close)
        stored = await asyncio.to_thread(open_message_store, settings)
        stack.push_async_callback(asyncio.to_thread, stored.close)
        ledger = await asyncio.to_thread(Ledger, settings.event_store_url)
        stack.push_async_callback(asyncio.to_thread, ledger.close)
        read_store = await asyncio.to_thread(ReadStore, settings.event_store_url)
        stack.push_async_callback(asyncio.to_thread, read_store.close)
        decider = handler_decider(settings, store, gate, stored, ledger, read_store)
        await CommandConsumer(settings, decider).run(stop, heartbeat)  # commits its last batch


async def run_relay(settings: Settings, stop: asyncio.Event, heartbeat: Callable[[], None]) -> None:
    """The outbox relay: event store notification log -> events topic, and beside it the
    replay publisher (services.runtimes.replay_publisher) and the OpenLineage emitter
    (services.runtimes.openlineage), which the relay wakes."""
    url = settings.event_store_url
    store = await asyncio.to_thread(open_event_store, url, extra_env=recorder_env(url))
    producer = make_producer(settings)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(asyncio.to_thread, store.close)
        stored = await asyncio.to_thread(open_message_store, settings)
        stack.push_async_callback(asyncio.to_thread, stored.close)
        ledger = await asyncio.to_thread(Ledger, url)
        stack.push_async_callback(asyncio.to_thread, ledger.close)
        progress = await asyncio.to_thread(ReplayProgress, url)
        stack.push_async_callback(asyncio.to_thread, progress.close)
        stack.push_async_callback(producer.stop)
        await producer.start()
        links = await asyncio.to_thread(TraceLinks, url) if tracing.enabled() else None
        if links is not None:  # the handler's spans, which the relay's continue
            stack.push_async_callback(asyncio.to_thread, links.close)
        ensure = topic_creator(settings)
        replays = ReplayPublisher(
            store,
            producer,
            stored,
            ledger,
            progress,
            batch_max=settings.replay_batch_max,
            ensure_topics=ensure,
            reserved_topics=settings.topics.all(),
        )
        # OpenLineage out (docs/lineage.md), when a sink is configured: woken with replays.
        lineage = lineage_emitter(settings, store, producer, ensure, stack)
        followers: list[ReplayPublisher | LineageEmitter] = [replays]
        followers += [] if lineage is None else [lineage]

        def wake_followers() -> None:
            for follower in followers:
                follower.wake()

        relay = Relay(
            store,
            producer,
            settings.topics.events,
            batch_max=settings.relay_batch_max,
            poll_interval_s=settings.relay_poll_interval_ms / 1000,
            heartbeat=heartbeat,
            ensure_topics=ensure,
            reserved_topics=settings.topics.all(),
            on_published=wake_followers,
            trace_links=links,
        )
        # The event store's own retention (services.runtimes.retention) beside the relay.
        retention = relay_retention(settings, store)
        await asyncio.gather(
            relay.run(stop), *(follower.run(stop) for follower in followers), retention.run(stop)
        )


ROLES: dict[str, Role] = {
    "handler": run_handler,
    "relay": run_relay,
    "api": run_api,
    "projector": run_projector,
    "orchestrator": run_orchestrator,
    "reconciler": run_reconciler,
}


class UnknownRole(ValueError):
    pass


def check_roles(names: Sequence[str]) -> list[str]:
    unknown = [name for name in names if name not in ROLES]
    if unknown:
        raise UnknownRole(f"Unknown role(s) {', '.join(unknown)}; known: {', '.join(ROLES)}")
    if not names:
        raise UnknownRole(f"No role given; known: {', '.join(ROLES)}")
    return list(dict.fromkeys(names))


async def run_roles(
    settings: Settings,
    names: Sequence[str],
    stop: asyncio.Event,
    *,
    heartbeat_dir: Path | None = None,
) -> None:
    """Run the named roles until `stop` is set. If one of them fails, the others are
    stopped too and the failure is raised: a half-running process is worse than none."""
    roles = check_roles(names)
    tracing.configure(settings)  # once per process, if PIPELINES_TRACING says so
    observed = contextlib.ExitStack()  # the metrics port (one per process), if set
    observed.callback(tracing.shutdown)
    observed.enter_context(exposition.serving(settings))
    beats = {name: Heartbeat(name, heartbeat_dir) for name in roles}
    tasks = {
        asyncio.create_task(ROLES[name](settings, stop, beats[name]), name=f"role-{name}"): name
        for name in roles
    }
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        failed = [task for task in done if task.exception() is not None]
        for task in failed:
            log.error("Role %s failed", tasks[task], exc_info=task.exception())
        if not stop.is_set():
            if not failed:
                log.error("Role(s) %s stopped by themselves", [tasks[t] for t in done])
            stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        error = failed[0].exception() if failed else None
        if error is not None:
            raise error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for beat in beats.values():
            beat.clear()
        observed.close()
