"""The HTTP API's way to the write side: publish a command, wait for its result.

The gateway reads the command-results topic without a consumer group: it assigns itself
every partition (no join delay, no rebalances) and positions them BEFORE it produces
anything, so no result of a command it sends can be missed. Positions come from
`offsets_for_times` a little before start-up, not from end offsets, which the embedded
broker reports wrongly (DESIGN.md, Testing); reading a few older results is harmless,
since only results someone waits for are decoded.

A command id is the client's `Idempotency-Key` when it sent one: a retried HTTP request
is then the same command, and the handler answers it with the stored result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.cloudevents import decode_result, encode_command, result_id
from contracts.commands import Command, new_id
from contracts.errors import WireError
from contracts.results import CommandResult
from services.adapters.kafka.clients import make_consumer, make_producer
from services.settings import Settings

log = logging.getLogger(__name__)

API_SOURCE = "/pipelines/api"
# Covers clock skew between us and the broker, which stamps the records' times.
_LOOKBACK_MS = 10_000
_POLL_MS = 200
_READ_FAILURE_BACKOFF_S = 1.0


class GatewayTimeout(Exception):
    """No result arrived in time; the command may still be applied later."""

    def __init__(self, command_id: str, command_type: str, timeout_s: float) -> None:
        super().__init__(f"No result for command {command_id} within {timeout_s} s")
        self.command_id = command_id
        self.command_type = command_type
        self.timeout_s = timeout_s


class GatewayUnavailable(Exception):
    """The command could not be published (broker unreachable, gateway not running)."""

    def __init__(self, command_id: str, command_type: str, reason: str) -> None:
        super().__init__(f"Command {command_id} not published: {reason}")
        self.command_id = command_id
        self.command_type = command_type
        self.reason = reason


@dataclass
class _Waiting:
    command_type: str
    future: asyncio.Future[CommandResult]
    waiters: int = field(default=0)


class CommandGateway:
    """`await start()`, then `await send(command)` from any request; `await stop()`."""

    def __init__(self, settings: Settings, *, timeout_s: float | None = None) -> None:
        self.settings = settings
        self.timeout_s = settings.api_result_timeout_s if timeout_s is None else timeout_s
        self._topic = settings.topics.command_results
        self._pending: dict[str, _Waiting] = {}
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def start(self) -> None:
        since_ms = int(time.time() * 1000) - _LOOKBACK_MS
        consumer = make_consumer(self.settings, group_id=None)
        producer = make_producer(self.settings)
        await consumer.start()
        try:
            await self._position(consumer, since_ms)
            await producer.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer, self._producer = consumer, producer
        self._reader = asyncio.create_task(self._read(consumer), name="gateway-results")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for command_id, waiting in self._pending.items():
            if not waiting.future.done():
                waiting.future.set_exception(
                    GatewayUnavailable(command_id, waiting.command_type, "the API is shutting down")
                )
        self._pending.clear()
        if self._producer is not None:
            await self._producer.stop()
        if self._consumer is not None:
            await self._consumer.stop()
        self._reader = self._producer = self._consumer = None

    async def send(self, command: Command, command_id: str | None = None) -> CommandResult:
        """Publish `command` and return its result. Raises GatewayTimeout when none came
        within the timeout, GatewayUnavailable when it could not be published."""
        command_id = command_id or str(new_id())
        command_type = command.command_type()
        if self._producer is None or not self.running:
            raise GatewayUnavailable(command_id, command_type, "the gateway is not running")
        # A concurrent request with the same key shares the first one's wait.
        waiting = self._pending.get(command_id)
        first = waiting is None
        if waiting is None:
            future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
            waiting = self._pending[command_id] = _Waiting(command_type, future)
        waiting.waiters += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                if first:
                    try:
                        await self._publish(command, command_id)
                    except GatewayUnavailable as error:
                        waiting.future.set_exception(error)  # every sharer gets it
                return await asyncio.shield(waiting.future)
        except TimeoutError:
            raise GatewayTimeout(command_id, command_type, self.timeout_s) from None
        finally:
            waiting.waiters -= 1
            if waiting.waiters == 0 and self._pending.get(command_id) is waiting:
                del self._pending[command_id]

    async def _publish(self, command: Command, command_id: str) -> None:
        assert self._producer is not None
        record = encode_command(command, command_id=command_id, source=API_SOURCE)
        try:
            await self._producer.send_and_wait(
                self.settings.topics.commands,
                value=record.value,
                key=record.key,
                headers=record.headers,
            )
        except Exception as error:
            raise GatewayUnavailable(command_id, command.command_type(), str(error)) from error

    async def _position(self, consumer: AIOKafkaConsumer, since_ms: int) -> None:
        await consumer.topics()  # loads metadata
        partitions = consumer.partitions_for_topic(self._topic)
        if not partitions:
            raise RuntimeError(f"Topic {self._topic} does not exist (create the topics first)")
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        found = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        for tp in tps:
            at = found.get(tp)
            if at is None:
                # Nothing that recent: Apache Kafka's end is right; the embedded broker
                # answers with an offset at or before its true end (never past it).
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, at.offset)
        for tp in tps:
            await consumer.position(tp)  # resolve every position before the first send

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=_POLL_MS)
            except Exception:
                log.exception("Reading command results failed; retrying")
                await asyncio.sleep(_READ_FAILURE_BACKOFF_S)
                continue
            for records in batches.values():
                for record in records:
                    self._deliver(record.key, record.value, record.headers)

    def _deliver(
        self, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        if key is None:
            return
        command_id = key.decode(errors="replace")
        waiting = self._pending.get(command_id)
        if waiting is None or waiting.future.done():
            return
        try:
            decoded = decode_result(value, headers)
        except WireError as error:
            log.warning("Undecodable result for command %s: %s", command_id, error)
            return
        if decoded.attributes.id == result_id(command_id):
            waiting.future.set_result(decoded.result)


__all__ = ["API_SOURCE", "CommandGateway", "GatewayTimeout", "GatewayUnavailable"]
