"""The one way to put a command on Kafka, and to wait for its result.

`CommandBus.publish` sends a command and waits for the broker's acknowledgement (the
orchestrator and the reconciler, which never wait for results: their next sweep decides
again). `CommandBus.send` also waits for the command's result (the HTTP API, the CLI).

The results are read by one group-less engine (`services.adapters.kafka.engine`) over
every partition of the results topic, positioned BEFORE anything is produced, so no
result of a command sent here can be missed; many concurrent waiters share it. Positions
come from `offsets_for_times` a little before start-up, not from end offsets, which the
embedded broker reports wrongly; reading a few older results is harmless, since only
results someone waits for are decoded. The reader fetches only while some `send` waits
(`ConsumerEngine.fetch_only_when`): an idle API or CLI sends the broker no fetches, and
the first command after a quiet spell does not wait behind a fetch held for an idle
consumer's long wait (services.adapters.kafka.fetch_pacing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from contracts.cloudevents import decode_result, encode_command, result_id
from contracts.commands import Command, new_id
from contracts.envelope import KafkaRecord
from contracts.errors import WireError
from contracts.results import CommandResult
from services.adapters.kafka.clients import make_producer
from services.adapters.kafka.engine import Batch, ConsumerEngine, Membership, since
from services.observability.tracing import current_traceparent
from services.settings import Settings

log = logging.getLogger(__name__)

# Covers clock skew between us and the broker, which stamps the records' times.
LOOKBACK_MS = 10_000
_POLL_MS = 200
# How long the broker may hold a fetch of results when the settings name no fetch wait:
# someone is waiting on every result, and the embedded broker answers a fetch only at
# its wait, whatever arrives meanwhile (Apache Kafka at once, so this costs only idle
# polls of one reader per process there).
_FETCH_WAIT_MS = 20


class Unanswered(Exception):
    """A command sent here that got no result: `ResultTimeout` or `NotPublished`."""

    def __init__(self, message: str, command_id: str, command_type: str) -> None:
        super().__init__(message)
        self.command_id = command_id
        self.command_type = command_type


class ResultTimeout(Unanswered):
    """No result arrived in time; the command may still be applied later."""

    def __init__(self, command_id: str, command_type: str, timeout_s: float) -> None:
        message = f"No result for command {command_id} within {timeout_s} s"
        super().__init__(message, command_id, command_type)
        self.timeout_s = timeout_s


class NotPublished(Unanswered):
    """The command could not be published (broker unreachable, bus not running)."""

    def __init__(self, command_id: str, command_type: str, reason: str) -> None:
        super().__init__(f"Command {command_id} not published: {reason}", command_id, command_type)
        self.reason = reason


@dataclass
class _Waiting:
    command_type: str
    future: asyncio.Future[CommandResult]
    waiters: int = field(default=0)


class CommandBus:
    """`await start()` (with `results=True` to `send`), then `publish` or `send` from any
    task; `await stop()`. A producer may be shared with the role (`producer=`): the bus
    then neither starts nor stops it."""

    def __init__(
        self,
        settings: Settings,
        *,
        source: str,
        timeout_s: float = 10.0,
        producer: AIOKafkaProducer | None = None,
    ) -> None:
        self.settings = settings
        self.source = source
        self.timeout_s = timeout_s
        self._topic = settings.topics.commands
        self._pending: dict[str, _Waiting] = {}
        self._own_producer = producer is None
        self._producer = producer
        self._results: ConsumerEngine | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        if self._producer is None:
            return False
        return self._results is None or (self._reader is not None and not self._reader.done())

    async def start(self, *, results: bool = True) -> None:
        if results:
            started_ms = int(time.time() * 1000) - LOOKBACK_MS
            engine = ConsumerEngine(
                self.settings,
                name="command-results",
                topics=[self.settings.topics.command_results],
                handle=self._deliver,
                group_id=None,
                membership=Membership.ASSIGNED,
                batch_max=1000,
                batch_wait_ms=_POLL_MS,
                position=since(lambda: started_ms),
                consumer_options={
                    "fetch_max_wait_ms": self.settings.kafka_fetch_wait_ms or _FETCH_WAIT_MS
                },
            )
            engine.fetch_only_when(False)  # until someone waits
            await engine.start()  # positioned before the first send
            self._results = engine
        if self._producer is None:
            producer = make_producer(self.settings)
            try:
                await producer.start()
            except BaseException:
                if self._results is not None:
                    await self._results.stop()
                raise
            self._producer = producer
        if self._results is not None:
            self._reader = asyncio.create_task(self._results.run(), name="command-results")

    async def stop(self) -> None:
        if self._results is not None:
            self._results.request_stop()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._results is not None:
            await self._results.stop()
        for command_id, waiting in self._pending.items():
            if not waiting.future.done():
                waiting.future.set_exception(
                    NotPublished(command_id, waiting.command_type, "shutting down")
                )
        self._pending.clear()
        if self._producer is not None and self._own_producer:
            await self._producer.stop()
        self._reader = self._results = self._producer = None

    async def publish(
        self, command: Command, command_id: str | None = None, *, api_key: str | None = None
    ) -> str:
        """Put `command` on the commands topic; returns its id once the broker has it.
        `api_key`: the name of the key a request sent it with (its sender). Raises
        NotPublished."""
        command_id = command_id or str(new_id())
        producer = self._producer
        if producer is None:
            raise NotPublished(command_id, command.command_type(), "the bus is not running")
        record = encode_command(
            command,
            command_id=command_id,
            source=self.source,
            api_key=api_key,
            traceparent=current_traceparent(),  # the sender's span (an HTTP request's)
        )
        return await self.publish_record(record, command_id, command.command_type())

    async def publish_record(self, record: KafkaRecord, command_id: str, command_type: str) -> str:
        """Put a record made elsewhere on the commands topic, as it is (a redriven dead
        letter: `pipelines dlq redrive`); `command_id` is its `ce_id`. Raises NotPublished."""
        producer = self._producer
        if producer is None:
            raise NotPublished(command_id, command_type, "the bus is not running")
        try:
            await producer.send_and_wait(
                self._topic, value=record.value, key=record.key, headers=record.headers
            )
        except Exception as error:
            raise NotPublished(command_id, command_type, str(error)) from error
        return command_id

    async def send(
        self,
        command: Command,
        command_id: str | None = None,
        *,
        timeout_s: float | None = None,
        api_key: str | None = None,
    ) -> CommandResult:
        """Publish `command` and return its result. Raises ResultTimeout when none came in
        time, NotPublished when it could not be published. Concurrent sends of one command
        id share one publication and one wait."""
        command_id = command_id or str(new_id())
        return await self._send(
            command_id,
            command.command_type(),
            timeout_s,
            lambda: self.publish(command, command_id, api_key=api_key),
        )

    async def send_record(
        self,
        record: KafkaRecord,
        command_id: str,
        command_type: str,
        *,
        timeout_s: float | None = None,
    ) -> CommandResult:
        """`publish_record`, then the result of `command_id`, as `send`."""
        return await self._send(
            command_id,
            command_type,
            timeout_s,
            lambda: self.publish_record(record, command_id, command_type),
        )

    async def _send(
        self,
        command_id: str,
        command_type: str,
        timeout_s: float | None,
        publish: Callable[[], Awaitable[str]],
    ) -> CommandResult:
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        if not self.running:
            raise NotPublished(command_id, command_type, "the bus is not running")
        if self._results is None:
            raise NotPublished(command_id, command_type, "the bus reads no results")
        waiting = self._pending.get(command_id)
        first = waiting is None
        if waiting is None:
            future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
            waiting = self._pending[command_id] = _Waiting(command_type, future)
            if len(self._pending) == 1:
                self._results.fetch_only_when(True)
        waiting.waiters += 1
        try:
            async with asyncio.timeout(timeout_s):
                if first:
                    try:
                        await publish()
                    except NotPublished as error:
                        waiting.future.set_exception(error)  # every sharer gets it
                return await asyncio.shield(waiting.future)
        except TimeoutError:
            raise ResultTimeout(command_id, command_type, timeout_s) from None
        finally:
            waiting.waiters -= 1
            if waiting.waiters == 0 and self._pending.get(command_id) is waiting:
                del self._pending[command_id]
                if not self._pending and self._results is not None:
                    self._results.fetch_only_when(False)

    async def _deliver(self, batch: Batch) -> None:
        for record in batch.records:
            if record.key is None:
                continue
            command_id = record.key.decode(errors="replace")
            waiting = self._pending.get(command_id)
            if waiting is None or waiting.future.done():
                continue
            try:
                decoded = decode_result(record.value, list(record.headers or ()))
            except WireError as error:
                log.warning("Undecodable result for command %s: %s", command_id, error)
                continue
            if decoded.attributes.id == result_id(command_id):
                waiting.future.set_result(decoded.result)


__all__ = ["LOOKBACK_MS", "CommandBus", "NotPublished", "ResultTimeout", "Unanswered"]
