"""Every store in the event store's database creates its tables one way
(projections.db.Database.create_tables): processes starting together on a fresh
database, two of each store and the event store itself, all succeed, on SQLite and on
PostgreSQL (where the creation runs under the event store's advisory lock), and opening a
store again keeps what it holds."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Protocol
from uuid import uuid4

from projections.db import Database
from projections.schema import TABLES
from projections.store import ReadStore
from services.adapters.api_keys import ApiKeyStore
from services.adapters.command_records import recorder_env
from services.adapters.eventstore import open_event_store
from services.adapters.message_store import MESSAGES_TABLE, DatabaseMessageStore
from services.runtimes.orchestrator.ledger import LEDGER_TABLE, OUTPUTS_TABLE, Ledger, RouteCounts
from services.runtimes.orchestrator.liveness import HEARTBEATS_TABLE, Heartbeats
from services.runtimes.reconciler.checkpoints import HEADS, TABLE, Checkpoints


class Closable(Protocol):
    def close(self) -> None: ...


def event_store(url: str) -> Closable:
    return open_event_store(url, extra_env=recorder_env(url))


OPENERS: tuple[Callable[[str], Closable], ...] = (
    Ledger,
    Heartbeats,
    Checkpoints,
    ApiKeyStore,
    DatabaseMessageStore,
    ReadStore,
    event_store,
)
CREATED = (
    LEDGER_TABLE,
    OUTPUTS_TABLE,
    HEARTBEATS_TABLE,
    TABLE,
    HEADS,
    "api_keys",
    MESSAGES_TABLE,
    *(table.physical() for table in TABLES),
)


def test_stores_opening_a_fresh_database_together_all_succeed(store_url: str) -> None:
    openers = OPENERS * 2
    barrier = Barrier(len(openers))

    def open_and_close(opener: Callable[[str], Closable]) -> None:
        barrier.wait()
        opener(store_url).close()

    with ThreadPoolExecutor(len(openers)) as pool:
        list(pool.map(open_and_close, openers))  # re-raises the first failure
    db = Database(store_url)
    try:
        assert [table for table in CREATED if not db.table_exists(table)] == []
    finally:
        db.close()


def test_a_store_opened_again_keeps_its_rows(store_url: str) -> None:
    execution_id, message_id = uuid4(), uuid4()
    with Ledger(store_url) as ledger:
        ledger.expect(execution_id, [("a", message_id)])
    with Ledger(store_url) as again:
        again.db.create_tables(Ledger.TABLES)
        assert again.counts(execution_id) == {"a": RouteCounts(1, 0, 0)}
