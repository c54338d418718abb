"""The database store's own promises, on SQLite and PostgreSQL: one row per message whose
first copy stays, batches larger than a statement, two stores on one database (two
machines on PostgreSQL) sharing every message, overlapping batches stored at once by two
of them without a deadlock, and reads served by the stored-order index."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier, BrokenBarrierError
from uuid import UUID, uuid4

import orjson
import pytest

from contracts.route_messages import RouteMessage
from projections.db import Database
from services.adapters.message_store import MESSAGES_TABLE, DatabaseMessageStore, ToStore
from tests.adapters.message_store.support import EXECUTION, again, message


@pytest.fixture
def stores(store_url: str) -> Iterator[tuple[DatabaseMessageStore, DatabaseMessageStore]]:
    """Two stores, each with its own connection, on one database."""
    one, two = DatabaseMessageStore(store_url), DatabaseMessageStore(store_url)
    yield one, two
    one.close()
    two.close()


def test_one_row_per_message_and_its_first_copy_stays(store_url: str) -> None:
    with DatabaseMessageStore(store_url) as store:
        first = message({"attempt": 1})
        store.store_consumed("a", "t.a", [first], error="boom")
        store.store_consumed("a", "t.a", [again(first, {"attempt": 2})])
        rows = store.db.query(
            f"SELECT execution_id, route, direction, message_id, seq, topic, error, document "
            f"FROM {MESSAGES_TABLE}"
        )
    [(execution_id, route, direction, message_id, seq, topic, error, document)] = rows
    assert (execution_id, route, direction, message_id) == (
        str(EXECUTION),
        "a",
        "in",
        str(first.id),
    )
    assert (seq, topic, error) == (0, "t.a", "boom")
    assert orjson.loads(document)["payload"] == {"attempt": 1}


def test_a_batch_larger_than_one_statement_keeps_its_order(store_url: str) -> None:
    messages = [message({"n": n}, route="a") for n in range(1234)]
    with DatabaseMessageStore(store_url) as store:
        store.store("b", [ToStore("in", m, "t") for m in messages])
        store.store("b", [ToStore("out", m, "u") for m in reversed(messages)])
        assert [s.message for s in store.consumed(EXECUTION, "b")] == messages
        assert [s.message for s in store.produced(EXECUTION, "b")] == messages[::-1]


def test_two_stores_on_one_database_see_each_others_messages(
    stores: tuple[DatabaseMessageStore, DatabaseMessageStore],
) -> None:
    here, there = stores
    init, later = message({"n": 1}), message({"n": 2}, route="a")
    here.store_consumed("a", "t.a", [init])
    # The other machine takes the partition over and stores the batch again, and more.
    there.store_consumed("a", "t.a", [again(init, {"n": "copy"}), later])
    there.store_produced("b", [("t.c", later)])
    for store in stores:
        assert [s.message for s in store.consumed(EXECUTION, "a")] == [init, later]
        assert [s.message for s in store.produced(EXECUTION, "b")] == [later]
        assert store.routes(EXECUTION) == ["a", "b"]


def test_overlapping_batches_stored_at_once_each_keep_one_copy(
    stores: tuple[DatabaseMessageStore, DatabaseMessageStore],
) -> None:
    executions = [uuid4() for _ in range(4)]
    rounds = 20
    barrier = Barrier(2)

    def batch(round_: int, writer: int) -> list[ToStore]:
        # Both writers store the same ids, in opposite orders: without one lock order
        # PostgreSQL deadlocks them on each other's uncommitted keys.
        ids = [UUID(int=round_ * 1000 + n) for n in range(40)]
        if writer:
            ids.reverse()
        return [
            ToStore("in", _message(i, executions[i.int % 4], {"writer": writer}), "t") for i in ids
        ]

    def write(writer: int) -> None:
        try:
            for round_ in range(rounds):
                barrier.wait()
                stores[writer].store("a", batch(round_, writer))
        except BaseException:
            barrier.abort()  # the other writer stops waiting for this one
            raise

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(write, 0), pool.submit(write, 1)]
    errors = [f.exception() for f in futures]
    # The writer that failed first, not the one it left at the barrier.
    for error in sorted(filter(None, errors), key=lambda e: isinstance(e, BrokenBarrierError)):
        raise error

    for execution in executions:
        stored = stores[0].consumed(execution, "a")
        assert len(stored) == len({s.message.id for s in stored}) == rounds * 10


def _message(message_id: UUID, execution_id: UUID, payload: dict[str, object]) -> RouteMessage:
    return RouteMessage(id=message_id, execution_id=execution_id, route="z", payload=payload)


def test_opening_again_keeps_what_was_stored(store_url: str) -> None:
    stored = message({"n": 1})
    with DatabaseMessageStore(store_url) as store:
        store.store_consumed("a", "t.a", [stored])
    with DatabaseMessageStore(store_url) as store:
        assert [s.message for s in store.consumed(EXECUTION, "a")] == [stored]


def test_reads_are_served_by_the_stored_order_index(sqlite_url: str) -> None:
    DatabaseMessageStore(sqlite_url).close()
    db = Database(sqlite_url)
    try:
        plan = db.query(
            f"EXPLAIN QUERY PLAN SELECT stored_at, topic, error, document FROM {MESSAGES_TABLE} "
            "WHERE execution_id = ? AND route = ? AND direction = ? ORDER BY stored_at, seq",
            (str(EXECUTION), "a", "in"),
        )
    finally:
        db.close()
    details = " ".join(str(row[-1]) for row in plan)
    assert f"USING INDEX {MESSAGES_TABLE}_stored_order" in details
    assert "TEMP B-TREE" not in details  # no sort: the index is in stored order
