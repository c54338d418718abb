"""Retention's sweeps (services.runtimes.retention) on SQLite and PostgreSQL: each removes
exactly what is older than its window, dedupe holds inside it, and a replay of an execution
whose messages were swept answers 410 StoredMessagesExpired.

Times: the command records' and heartbeats' are written old directly (or by an injected
clock) and the sweep's clock is injected; never a sleep."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID, uuid4

import pytest

from contracts import CreateConfig, RunConfig
from contracts.replay_commands import ReplayExecution
from contracts.route_messages import RouteMessage
from projections.db import Database
from services.adapters.command_records import (
    PROCESSED_TABLE,
    PostgresCommandRecorder,
    SQLiteCommandRecorder,
)
from services.adapters.eventstore import EventStore
from services.adapters.message_store import DatabaseMessageStore
from services.adapters.stores import open_command_store
from services.runtimes.orchestrator.ledger import Ledger
from services.runtimes.orchestrator.liveness import Heartbeats
from services.runtimes.retention import (
    Retention,
    command_records_task,
    heartbeats_task,
    route_messages_task,
    swept_markers_task,
)
from services.service_layer.decider import Decider, Item
from services.service_layer.handlers import HANDLERS
from tests.service_layer.decider_support import (
    T0,
    Clock,
    accepted,
    config_document,
    rejected,
)

DAY = 86400.0


def _recorder(store: EventStore) -> SQLiteCommandRecorder | PostgresCommandRecorder:
    recorder = store.recorder
    assert isinstance(recorder, SQLiteCommandRecorder | PostgresCommandRecorder)
    return recorder


@contextmanager
def _decider(url: str) -> Iterator[tuple[Decider, DatabaseMessageStore]]:
    with open_command_store(url) as store, DatabaseMessageStore(url) as messages:
        yield Decider(store, HANDLERS, stored=messages, clock=Clock()), messages


def _age(url: str, command_ids: list[str], processed_at: float) -> None:
    """Date records as if processed at `processed_at` (epoch s)."""
    db = Database(url)
    try:
        for command_id in command_ids:
            db.query(
                f"UPDATE {PROCESSED_TABLE} SET processed_at = ? WHERE command_id = ?",
                (processed_at, command_id),
            )
    finally:
        db.close()


def test_command_records_older_than_the_window_go_and_dedupe_holds_inside_it(
    store_url: str,
) -> None:
    with _decider(store_url) as (decider, _):
        old = Item(command_id="old", command=CreateConfig(name="a", document=config_document()))
        young = Item(command_id="young", command=CreateConfig(name="b", document=config_document()))
        first = {o.command_id: o for o in decider.decide([old, young])}
        now = time.time()
        _age(store_url, ["old"], now - 8 * DAY)
        _age(store_url, ["young"], now - 6 * DAY)
        recorder = _recorder(decider.store)
        retention = Retention(
            "relay",
            [command_records_task(recorder, 7 * DAY)],
            interval_s=1,
            batch=100,
            clock=lambda: now,
        )

        assert retention.once() is False
        assert retention.removed == {"command records": 1}
        assert set(recorder.select_processed(["old", "young"])) == {"young"}

        # Inside the window: the stored result, byte for byte, nothing decided again.
        (repeat,) = decider.decide([young])
        assert repeat.repeated and repeat.value == first["young"].value
        # Past it: decided again, and the aggregate's own check refuses the repeat.
        (again,) = decider.decide([old])
        assert not again.repeated
        assert rejected(again.result).http_status == 409
        assert retention.once() is False  # the new record is young


def test_a_full_batch_asks_for_the_next_round_at_once(store_url: str) -> None:
    with _decider(store_url) as (decider, _):
        items = [
            Item(command_id=f"c{n}", command=CreateConfig(name=f"n{n}", document=config_document()))
            for n in range(3)
        ]
        decider.decide(items)
        now = time.time()
        _age(store_url, [i.command_id for i in items], now - 2 * DAY)
        recorder = _recorder(decider.store)
        retention = Retention(
            "relay",
            [command_records_task(recorder, DAY)],
            interval_s=1,
            batch=2,
            clock=lambda: now,
        )
        assert retention.once() is True
        assert retention.once() is False
        assert retention.removed == {"command records": 3}


def test_a_window_of_zero_keeps_everything(store_url: str) -> None:
    with open_command_store(store_url) as store:
        retention = Retention(
            "relay", [command_records_task(_recorder(store), 0)], interval_s=1, batch=1
        )
        assert retention.tasks == []


def test_an_old_processed_commands_table_gets_its_column_dated_now(store_url: str) -> None:
    db = Database(store_url)
    try:
        db.query(
            f"CREATE TABLE {PROCESSED_TABLE} (command_id TEXT PRIMARY KEY, result "
            f"{'BLOB' if db.dialect == 'sqlite' else 'bytea'} NOT NULL)"
        )
        db.query(f"INSERT INTO {PROCESSED_TABLE} VALUES ('before', ?)", (b"{}",))
    finally:
        db.close()
    started = time.time()
    with open_command_store(store_url) as store:
        recorder = _recorder(store)
        assert recorder.select_processed(["before"]) == {"before": b"{}"}
        assert recorder.sweep_processed(started - 1, 10) == 0
        assert recorder.sweep_processed(time.time() + 1, 10) == 1


def _message(execution: UUID) -> RouteMessage:
    return RouteMessage(
        id=uuid4(),
        execution_id=execution,
        route="up",
        payload={"n": 1},
        stage=0,
        correlation_id="c",
        time=T0,
    )


def test_messages_and_ledger_of_an_execution_go_together(store_url: str) -> None:
    old, young = uuid4(), uuid4()
    with DatabaseMessageStore(store_url) as messages, Ledger(store_url) as ledger:
        for execution in (old, young):
            message = _message(execution)
            messages.store_consumed("fetch", "t.in", [message])
            ledger.expect(execution, [("fetch", message.id)])
            ledger.consume(execution, "fetch", [message.id])
            ledger.produce_many([(execution, "fetch", message.id)])
        # `old` stored its message 31 days before the sweep's clock, `young` 29.
        db = messages.db
        now = time.time()
        for execution, days in ((old, 31), (young, 29)):
            stamp = int((now - days * DAY) * 1e9)
            for table, column in (
                ("route_messages", "stored_at"),
                ("route_message_executions", "last_seen_at"),
            ):
                db.query(
                    f"UPDATE {table} SET {column} = ? WHERE execution_id = ?",
                    (stamp, str(execution)),
                )
        retention = Retention(
            "orchestrator",
            [
                route_messages_task(messages, ledger, 30 * DAY),
                swept_markers_task(messages, 30 * DAY),
            ],
            interval_s=1,
            batch=10,
            clock=lambda: now,
        )
        assert retention.once() is False
        assert messages.consumed(old, "fetch") == []
        assert messages.swept(old) is not None
        assert ledger.counts(old) == {}
        assert ledger.progress([old])[old].routes == {}
        assert len(messages.consumed(young, "fetch")) == 1
        assert ledger.counts(young)["fetch"].consumed == 1
        assert retention.removed == {"executions' route messages and ledgers": 1}

        # The marker goes one window after the sweep.
        later = Retention(
            "orchestrator",
            [swept_markers_task(messages, 30 * DAY)],
            interval_s=1,
            batch=10,
            clock=lambda: now + 31 * DAY,
        )
        later.once()
        assert messages.swept(old) is None


def test_heartbeats_of_dead_instances_go_after_their_window(store_url: str) -> None:
    beat_at = [1000.0]
    with Heartbeats(store_url, clock=lambda: beat_at[0]) as heartbeats:
        heartbeats.beat("dead", 1)
        beat_at[0] = 1000.0 + 2 * DAY
        heartbeats.beat("alive", 1)
        retention = Retention(
            "orchestrator",
            [heartbeats_task(heartbeats, DAY)],
            interval_s=1,
            batch=10,
            clock=lambda: 1000.0 + 2 * DAY,
        )
        assert retention.once() is False
        assert [b.instance_id for b in heartbeats.alive(10 * DAY)] == ["alive"]


@pytest.fixture
def replayable(store_url: str) -> Iterator[tuple[Decider, DatabaseMessageStore, UUID]]:
    """A config execution whose route `fetch` consumed one stored message."""
    with _decider(store_url) as (decider, messages):
        config = CreateConfig(name="crawler", document=config_document())
        run = RunConfig(config_id=config.config_id)
        for command in (config, run):
            accepted(decider.decide([Item(command_id=str(uuid4()), command=command)])[0].result)
        messages.store_consumed("fetch", "t.in", [_message(run.execution_id)])
        yield decider, messages, run.execution_id


def test_a_replay_inside_the_window_finds_its_messages(
    replayable: tuple[Decider, DatabaseMessageStore, UUID],
) -> None:
    decider, _, parent = replayable
    replay = ReplayExecution(parent=str(parent), from_stage="fetch", dry_run=True)
    result = accepted(decider.decide([Item(command_id=str(uuid4()), command=replay)])[0].result)
    assert result.http_status == 200


def test_a_replay_after_its_messages_were_swept_answers_stored_messages_expired(
    replayable: tuple[Decider, DatabaseMessageStore, UUID],
) -> None:
    decider, messages, parent = replayable
    assert messages.sweep(time.time_ns() + 1, 10) == [parent]
    for replay in (
        ReplayExecution(parent=str(parent), from_stage="fetch"),
        ReplayExecution(parent=str(parent), from_stage="fetch", dry_run=True),
    ):
        refused = rejected(
            decider.decide([Item(command_id=str(uuid4()), command=replay)])[0].result
        )
        assert (refused.http_status, refused.error_code) == (410, "StoredMessagesExpired")
        assert refused.details["execution_id"] == str(parent)
        assert "retention" in refused.message


def test_a_replay_of_messages_never_stored_still_answers_no_stored_messages(
    replayable: tuple[Decider, DatabaseMessageStore, UUID],
) -> None:
    decider, _, parent = replayable
    replay = ReplayExecution(parent=str(parent), from_stage="fetch", only_failed=True)
    refused = rejected(decider.decide([Item(command_id=str(uuid4()), command=replay)])[0].result)
    assert (refused.http_status, refused.error_code) == (404, "NoStoredMessages")
