"""The outbox relay: the event store's notification log, published to the events topic.

Each stored domain event becomes one LifecycleEvent (contracts.events), keyed by aggregate
id, plus the messages derived from it (services.service_layer.outbox: an execution's init
message, to its route's inbound topic). The relay's position is the highest notification
id for which that notification's event and messages, and every earlier notification's, were
acknowledged by the broker — never merely "sent" — and it is kept in the event store's own
database (`relay_positions`), so a restart resumes from it. Delivery is at-least-once:
after a failure or a crash the unacknowledged tail is sent again, and consumers dedupe by
(aggregate id, version), route workers by message id.

A derived message's topic belongs to a config, not to us. Before the first send to such a
topic the relay has `ensure_topics` make sure it exists (the role wires one that creates
missing topics with the configured partitions): Apache Kafka may not auto-create topics,
and a send to a missing topic would block every later event behind it. A config topic
that is one of our own (`reserved_topics`, e.g. the commands topic) is never written to.

Stored events are decoded from their JSON (orjson), not through domain classes, so the
relay never imports the domain.

When the log is drained the relay waits for new events, woken at once by whatever can tell
it about a commit:
- a save in this process (`pipelines dev` runs the handler beside it): the event store
  signals every commit to this process's listeners (services.adapters.commit_signals),
  and the relay listens for its store's database;
- on PostgreSQL, a save in any process: LISTEN on the library's channel (the recorder
  sends NOTIFY inside the events' transaction, so it is delivered at commit), with a slow
  safety poll behind it (`_SAFETY_POLL_S`: a dropped LISTEN connection);
- on SQLite, a save in another process cannot be heard: the relay polls every
  `poll_interval_s` (Settings.relay_poll_interval_ms; an empty poll is one indexed
  SELECT, about 0.1 ms of CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from contracts.cloudevents import encode_event
from contracts.envelope import KafkaRecord
from contracts.events import LifecycleEvent
from services.adapters import commit_signals
from services.adapters.command_records import PostgresCommandRecorder, SQLiteCommandRecorder
from services.adapters.eventstore import EventStore
from services.observability import collectors, metrics
from services.observability.trace_hops import RelaySpans
from services.observability.trace_links import TraceLinks
from services.runtimes.sweep import Next, Sweep
from services.service_layer.outbox import outbound_messages

log = logging.getLogger(__name__)

RELAY_NAME = "relay"
# Fields the mapper stores that are envelope or library bookkeeping, not event data
# (`originator_topic`, on creation events, is a Python class path: aggregate_type says it).
_ENVELOPE_FIELDS = (
    "originator_id",
    "originator_version",
    "timestamp",
    "class_version",
    "originator_topic",
)
_SNAPSHOT_TYPES = frozenset({"Snapshot", "AggregateSnapshot"})
# On PostgreSQL a missed NOTIFY (e.g. a dropped LISTEN connection) costs at most this delay.
_SAFETY_POLL_S = 5.0

PositionRecorder = SQLiteCommandRecorder | PostgresCommandRecorder
EnsureTopics = Callable[[Sequence[str]], Awaitable[None]]
"""Make sure these topics exist (create the missing ones); raise if that fails."""


class Sender(Protocol):
    """The part of aiokafka's producer the relay uses: `send` enqueues and returns a
    future that resolves when the broker acknowledges (or fails) the message."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Awaitable[Any]: ...


def to_lifecycle_event(notification: Notification) -> LifecycleEvent | None:
    """The published form of one stored event; None for a snapshot (not an event)."""
    _, _, qualname = notification.topic.partition(":")
    parts = (qualname or notification.topic).split(".")
    event_type = parts[-1]
    if event_type in _SNAPSHOT_TYPES:
        return None
    # Events are nested in their aggregate (`Pipeline.Started`); a top-level event class
    # names its module instead.
    aggregate_type = parts[-2] if len(parts) > 1 else notification.topic.split(":")[0]
    state: dict[str, Any] = orjson.loads(notification.state)
    timestamp = state.get("timestamp")
    for name in _ENVELOPE_FIELDS:
        state.pop(name, None)
    return LifecycleEvent(
        event_type=event_type,
        aggregate_id=str(notification.originator_id),
        aggregate_type=aggregate_type,
        version=notification.originator_version,
        time=datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp,
        data=state,
    )


@dataclass(frozen=True)
class BatchOutcome:
    """What one pass did: notifications read, the position after it, and whether a
    send failed (the position then stops before the first failure)."""

    read: int
    position: int
    failed: bool


class Relay:
    def __init__(
        self,
        store: EventStore,
        sender: Sender,
        topic: str,
        *,
        name: str = RELAY_NAME,
        batch_max: int = 1000,
        poll_interval_s: float = 0.02,
        heartbeat: Callable[[], None] | None = None,
        ensure_topics: EnsureTopics | None = None,
        reserved_topics: Iterable[str] = (),
        on_published: Callable[[], None] | None = None,
        trace_links: TraceLinks | None = None,
    ) -> None:
        recorder = store.recorder
        if not isinstance(recorder, SQLiteCommandRecorder | PostgresCommandRecorder):
            raise TypeError(
                "The relay keeps its position beside the events: open the store with "
                "services.adapters.command_records.recorder_env(url)"
            )
        self._store = store
        self._recorder: PositionRecorder = recorder
        self._sender = sender
        self._topic = topic
        self._name = name
        self._batch_max = batch_max
        self._poll_interval_s = poll_interval_s
        self._heartbeat = heartbeat
        self._ensure_topics = ensure_topics
        self._reserved = frozenset({topic, *reserved_topics})
        self._ensured: set[str] = set()
        # Told after every pass that published something (the replay publisher follows
        # the same log: a new replay's creation event is among what was published).
        self._on_published = on_published
        self.position = recorder.get_position(name)
        # While tracing: spans continuing the commands' (services.observability.trace_links).
        self._spans = RelaySpans(trace_links)

    async def publish_batch(self) -> BatchOutcome:
        """Read up to `batch_max` notifications after the position, send each one's event
        and derived messages, await every acknowledgement, and advance to the last
        notification that, with all before it, was acknowledged in full."""
        started, before = time.perf_counter(), self.position
        notifications = await asyncio.to_thread(self._read)
        if not notifications:
            return BatchOutcome(0, self.position, failed=False)
        planned = [(n.id, self._records_of(n)) for n in notifications]
        try:
            await self._ensure_outbound_topics(planned)
        except Exception:
            log.exception("Relay could not make sure the outbound topics exist")
            return BatchOutcome(len(notifications), self.position, failed=True)
        traced = await self._spans.begin(planned)  # None while tracing is off
        sent: list[tuple[int, list[Awaitable[Any]]]] = []
        failed = False
        for notification_id, records in planned:
            acks: list[Awaitable[Any]] = []
            try:
                for topic, record in records:
                    acks.append(
                        await self._sender.send(
                            topic, value=record.value, key=record.key, headers=record.headers
                        )
                    )
            except Exception:
                log.exception("Relay could not enqueue notification %s", notification_id)
                failed = True
                _discard(acks)
                break
            sent.append((notification_id, acks))
        # One gather for the whole batch (one per notification cost more than the sends).
        results = await asyncio.gather(
            *(ack for _, acks in sent for ack in acks), return_exceptions=True
        )
        advanced, first = self.position, 0
        for notification_id, acks in sent:
            own, first = results[first : first + len(acks)], first + len(acks)
            failure = next((r for r in own if isinstance(r, BaseException)), None)
            if failure is not None:
                log.warning(
                    "Broker did not acknowledge notification %s: %s", notification_id, failure
                )
                failed = True
                break
            advanced = notification_id
        if advanced != self.position:
            await asyncio.to_thread(self._recorder.set_position, self._name, advanced)
            self.position = advanced
        await self._spans.end(traced, self.position)
        passed = sum(1 for n in notifications if before < n.id <= self.position)
        metrics.relayed(passed, len(notifications), started)
        return BatchOutcome(len(notifications), self.position, failed)

    def _records_of(self, notification: Notification) -> list[tuple[str, KafkaRecord]]:
        """The event's record, then its derived messages; nothing for a snapshot."""
        event = to_lifecycle_event(notification)
        if event is None:
            return []
        records = [(self._topic, encode_event(event))]
        for topic, record in outbound_messages(event):
            if topic in self._reserved:
                log.error(
                    "Not publishing %s's %s message to '%s': that topic is the service's own",
                    event.aggregate_id,
                    event.event_type,
                    topic,
                )
                continue
            records.append((topic, record))
        return records

    async def _ensure_outbound_topics(
        self, planned: Sequence[tuple[int, list[tuple[str, KafkaRecord]]]]
    ) -> None:
        wanted = {topic for _, records in planned for topic, _ in records} - self._reserved
        missing = sorted(wanted - self._ensured)
        if missing and self._ensure_topics is not None:
            await self._ensure_topics(missing)
        self._ensured.update(missing)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set: straight on while the log has a backlog, waiting
        for a wake-up (a commit in this process, NOTIFY on PostgreSQL) or the poll interval
        (SQLite) when it is drained, and backing off after a failed send."""
        listens = isinstance(self._recorder, PostgresApplicationRecorder)
        sweep = Sweep(
            "Relay",
            self._pass,
            _SAFETY_POLL_S if listens else self._poll_interval_s,
            first_backoff_s=min(self._poll_interval_s, _SAFETY_POLL_S),
        )
        wake = commit_signals.on_loop(sweep.wake)
        backlog = collectors.relay_backlog(
            self._name, self._recorder.max_notification_id, lambda: self.position
        )
        with backlog, commit_signals.listening(self._store.commit_key, wake):
            async with _wake_ups(self._recorder, sweep.wake):
                await sweep.run(stop, on_round=self._heartbeat)

    async def _pass(self) -> Next:
        try:
            outcome = await self.publish_batch()
        except Exception:
            log.exception("Relay pass failed; retrying from position %s", self.position)
            return Next.BACK_OFF
        if outcome.read and self._on_published is not None:
            self._on_published()
        if outcome.failed:
            return Next.BACK_OFF
        return Next.NOW if outcome.read >= self._batch_max else Next.WAIT

    def _read(self) -> Sequence[Notification]:
        return self._recorder.select_notifications(
            start=self.position, limit=self._batch_max, inclusive_of_start=False
        )


@contextlib.asynccontextmanager
async def _wake_ups(recorder: PositionRecorder, wake: Callable[[], None]) -> AsyncIterator[None]:
    """On PostgreSQL, a thread LISTENing on the recorder's channel calls `wake` on every
    NOTIFY; SQLite has no notifications (the relay polls)."""
    if not isinstance(recorder, PostgresApplicationRecorder):
        yield
        return
    loop = asyncio.get_running_loop()
    stopped = threading.Event()
    listening = threading.Event()

    def listen() -> None:
        while not stopped.is_set():
            try:
                with recorder.datastore.get_connection() as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(recorder.channel_name)))
                    conn.commit()
                    listening.set()
                    # Events committed before LISTEN took effect are read by the next pass.
                    loop.call_soon_threadsafe(wake)
                    while not stopped.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            loop.call_soon_threadsafe(wake)
            except Exception:
                log.exception("Relay LISTEN connection failed; reconnecting")
                listening.set()
                stopped.wait(1.0)

    thread = threading.Thread(target=listen, name="relay-listen", daemon=True)
    thread.start()
    await asyncio.to_thread(listening.wait, 10.0)
    try:
        yield
    finally:
        stopped.set()
        await asyncio.to_thread(thread.join, 5.0)


def _discard(acks: Sequence[Awaitable[Any]]) -> None:
    """A notification half sent: its acknowledgements no longer matter, but a failure
    among them must not be reported as never retrieved."""
    for ack in acks:
        future = asyncio.ensure_future(ack)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
