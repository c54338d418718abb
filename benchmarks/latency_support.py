"""What the parts of the latency benchmark (benchmarks.latency) share: the figures, the
raw round trip, firing on schedule, the roles and the client's command bus."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.bench import percentile
from contracts import Command, StartPipeline
from contracts.cloudevents import encode_command
from services.adapters.kafka.clients import ensure_topics, make_consumer, make_producer
from services.adapters.kafka.command_bus import CommandBus
from services.adapters.kafka.embedded_broker import create_topics
from services.adapters.kafka.engine import all_partitions
from services.settings import Settings

T = TypeVar("T")

RATES = (50, 500, 1000)
VISIBILITY_RATE = 20
POLL_S = 0.002
SOURCE = "benchmarks.latency"
RAW_WARMUP = 5
START_TIMEOUT_S = 90.0  # the handler's consumer-group join (~5 s on the embedded broker)
RESULT_TIMEOUT_S = 30.0
VISIBLE_TIMEOUT_S = 15.0
HTTP_CONNECTIONS = 8  # at most this many GETs in flight, however many pipelines wait
VISIBILITY_PIPELINES = 32


@dataclass
class Figure:
    label: str
    latencies: list[float] = field(default_factory=list)  # seconds
    sent: int = 0
    rate: float | None = None  # achieved sends per second
    rejected: int = 0
    note: str = ""

    @property
    def lost(self) -> int:
        return self.sent - len(self.latencies)

    def ms(self, q: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else float("nan")
        return percentile(self.latencies, q) * 1000


# --- (0) the raw round trip -------------------------------------------------------------


async def raw_round_trip(settings: Settings, count: int, budget_s: float) -> Figure:
    """One message at a time, each sent only after the previous one was consumed."""
    assert settings.kafka_bootstrap_servers and settings.kafka_fetch_wait_ms
    topic = f"{settings.topic_prefix}.raw"
    await create_topics(settings.kafka_bootstrap_servers, [topic], 1)
    producer = make_producer(settings)
    consumer = make_consumer(
        settings, group_id=None, fetch_max_wait_ms=settings.kafka_fetch_wait_ms
    )
    tp = TopicPartition(topic, 0)
    record = encode_command(StartPipeline(pipeline_name="lat-00000"))  # a command's size
    payload = b"x" * (len(record.value) + sum(len(k) + len(v) for k, v in record.headers))
    figure = Figure("(0) raw produce -> assigned consumer")
    await producer.start()
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.position(tp)
        deadline = time.perf_counter() + budget_s
        for i in range(RAW_WARMUP + count):
            key = str(i).encode()
            start = time.perf_counter()
            await producer.send_and_wait(topic, payload, key=key)
            await consumed(consumer, tp, key)
            if i >= RAW_WARMUP:
                figure.latencies.append(time.perf_counter() - start)
            if time.perf_counter() > deadline:
                break
    finally:
        await producer.stop()
        await consumer.stop()
    figure.sent = len(figure.latencies)  # sequential: none is lost
    return figure


async def consumed(consumer: AIOKafkaConsumer, tp: TopicPartition, key: bytes) -> None:
    while True:
        batch = await consumer.getmany(tp, timeout_ms=1000)
        if any(record.key == key for record in batch.get(tp, [])):
            return


# --- (1) command -> result ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def topic_reader(
    settings: Settings, topic: str, *, at_end: bool = False
) -> AsyncIterator[AIOKafkaConsumer]:
    """A raw consumer (no CommandBus, no engine) of every partition of `topic` at the
    settings' fetch wait, positioned before anything is sent (at the end if `at_end`)."""
    consumer = make_consumer(
        settings, group_id=None, fetch_max_wait_ms=settings.kafka_fetch_wait_ms
    )
    await consumer.start()
    try:
        tps = await all_partitions(consumer, [topic])
        consumer.assign(tps)
        if at_end:
            await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        yield consumer
    finally:
        await consumer.stop()


def results_reader(settings: Settings) -> contextlib.AbstractAsyncContextManager[AIOKafkaConsumer]:
    """The results topic's reader, read by bench's `_await_results`."""
    return topic_reader(settings, settings.topics.command_results)


async def on_schedule(
    rate: float, count: int, fire: Callable[[], asyncio.Task[None] | None]
) -> tuple[list[asyncio.Task[None]], float]:
    """Open loop: `fire()` `count` times at `rate` per second, never waiting for what it
    started. Returns the tasks started (`fire` may skip a slot: None) and their rate."""
    tasks: list[asyncio.Task[None]] = []
    begin = time.perf_counter()
    for i in range(count):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = fire()
        if task is not None:
            tasks.append(task)
    return tasks, len(tasks) / (time.perf_counter() - begin + 1 / rate)


async def guarded(work: Awaitable[T], roles: asyncio.Task[None]) -> T:
    """`work`, unless the roles stop first (then raise why)."""
    task = asyncio.ensure_future(work)
    await asyncio.wait({task, roles}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        roles.result()
        raise RuntimeError("the roles stopped by themselves")
    return task.result()


async def send_all(bus: CommandBus, cmds: Sequence[Command], roles: asyncio.Task[None]) -> None:
    sends = [bus.send(c, timeout_s=START_TIMEOUT_S) for c in cmds]
    await guarded(asyncio.gather(*sends), roles)


@contextlib.asynccontextmanager
async def client_bus(settings: Settings) -> AsyncIterator[CommandBus]:
    bus = CommandBus(settings, source=SOURCE, timeout_s=RESULT_TIMEOUT_S)
    await bus.start(results=True)
    try:
        yield bus
    finally:
        await bus.stop()


@contextlib.asynccontextmanager
async def running_roles(settings: Settings, names: list[str]) -> AsyncIterator[asyncio.Task[None]]:
    """The named roles in their own process (`pipelines serve --role ...` with `settings`
    in its environment), as a user runs them: sharing this process's event loop and GIL
    with the load generator would time the generator as much as the roles (a profile of
    the in-process variant spent half its samples in the benchmark's own code). The task
    ends when the process does."""
    roles = [arg for name in names for arg in ("--role", name)]
    with tempfile.TemporaryDirectory(prefix="latency-roles-") as folder:
        serve = ["-m", "services.entrypoints.cli", "serve", *roles, "--heartbeat-dir", folder]
        async with role_process(settings, serve, Path(folder) / "roles.log") as task:
            yield task


@contextlib.asynccontextmanager
async def role_process(
    settings: Settings, args: Sequence[str], log: Path, extra_env: Mapping[str, str] = {}
) -> AsyncIterator[asyncio.Task[None]]:
    """`python *args` with `settings` (and no other PIPELINES_* variable) and `extra_env`
    in its environment, output to `log`; the task ends when the process does (raising
    with the log's tail unless it was stopped); SIGTERM on the way out."""
    await ensure_topics(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
    for name, value in settings.model_dump(exclude_none=True).items():
        env[f"PIPELINES_{name.upper()}"] = str(value)
    env.update(extra_env)
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    task = asyncio.create_task(_exited(process, log))
    try:
        yield task
    finally:
        if process.returncode is None:
            process.terminate()
        with contextlib.suppress(RuntimeError):
            await asyncio.wait_for(task, 60)


async def _exited(process: asyncio.subprocess.Process, log: Path) -> None:
    code = await process.wait()
    if code not in (0, -signal.SIGTERM):
        tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-2000:]
        raise RuntimeError(f"the roles' process exited with {code}:\n{tail}")
