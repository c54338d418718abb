"""A route batch's settlement, on SQLite and PostgreSQL: the outputs expected, the inputs
consumed or failed and (with a database message store on the ledger's database) the
messages stored, all in one commit — one statement on PostgreSQL, a transaction of
several when a batch needs more parameters than one statement takes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from contracts.route_messages import RouteMessage
from services.adapters.message_store import DatabaseMessageStore, ToStore
from services.runtimes.orchestrator.ledger import Ledger, RouteCounts, joined


@pytest.fixture
def opened(store_url: str) -> Iterator[tuple[Ledger, DatabaseMessageStore]]:
    ledger, storage = Ledger(store_url), DatabaseMessageStore(store_url)
    yield ledger, storage
    ledger.close()
    storage.close()


def _message(execution: UUID) -> RouteMessage:
    return RouteMessage(id=uuid4(), execution_id=execution, route="a", payload={"n": 1})


def test_one_settlement_sets_every_mark_of_a_row(
    opened: tuple[Ledger, DatabaseMessageStore],
) -> None:
    ledger, _ = opened
    execution, init, out, bad = uuid4(), uuid4(), uuid4(), uuid4()
    # An init route's batch: it expects its own init message and consumes it in one go.
    ledger.settle_many(
        [(execution, "a", out)],
        [(execution, "a", init)],
        [(execution, "a", bad)],
        expected=[(execution, "a", init), (execution, "b", out), (execution, "a", bad)],
    )
    assert ledger.counts(execution) == {"a": RouteCounts(2, 1, 1), "b": RouteCounts(1, 0, 0)}
    assert ledger.progress([execution])[execution].of("a").messages_out == 1


def test_a_settlement_never_clears_a_mark(opened: tuple[Ledger, DatabaseMessageStore]) -> None:
    ledger, _ = opened
    execution, message = uuid4(), uuid4()
    # Consumed downstream before its producer settled: the row waits, unexpected.
    ledger.settle_many([], [(execution, "b", message)])
    assert not ledger.drained(execution)
    ledger.settle_many([], [], expected=[(execution, "b", message)])
    assert ledger.counts(execution) == {"b": RouteCounts(1, 1, 0)}
    assert ledger.drained(execution)
    for _ in range(2):  # a redelivered settlement changes nothing
        ledger.settle_many([], [(execution, "b", message)], expected=[(execution, "b", message)])
    assert ledger.counts(execution) == {"b": RouteCounts(1, 1, 0)}


@pytest.mark.parametrize("size", [10, 5000], ids=["one statement", "more than one takes"])
def test_stored_and_counted_together(
    opened: tuple[Ledger, DatabaseMessageStore], size: int
) -> None:
    ledger, storage = opened
    execution = uuid4()
    inputs = [_message(execution) for _ in range(size)]
    items = [ToStore("in", m, "t.in") for m in inputs]
    settle = lambda: ledger.settle_many(  # noqa: E731 - settled twice, as on redelivery
        [],
        [(execution, "a", m.id) for m in inputs],
        expected=[(execution, "a", m.id) for m in inputs],
        also=storage.writes("a", items),
    )
    settle()
    settle()
    assert [s.message.id for s in storage.consumed(execution, "a")] == [m.id for m in inputs]
    assert ledger.counts(execution) == {"a": RouteCounts(size, size, 0)}
    assert ledger.drained(execution)


def test_a_failed_settlement_stores_nothing(opened: tuple[Ledger, DatabaseMessageStore]) -> None:
    ledger, storage = opened
    execution = uuid4()
    message = _message(execution)
    broken = ("INSERT INTO no_such_table (x) VALUES (?)", [1])
    with pytest.raises(Exception):  # noqa: B017 - each database names it its own way
        ledger.settle_many(
            [],
            [(execution, "a", message.id)],
            also=[*storage.writes("a", [ToStore("in", message, "t.in")]), broken],
        )
    assert storage.consumed(execution, "a") == []
    assert ledger.counts(execution) == {}


def test_the_store_shares_only_its_own_database(
    opened: tuple[Ledger, DatabaseMessageStore], tmp_path: Path
) -> None:
    ledger, storage = opened
    assert storage.shares(ledger.db)
    with Ledger(f"sqlite:///{tmp_path}/other.db") as other:
        assert not storage.shares(other.db)


def test_joined_writes_are_one_statement() -> None:
    statement, params = joined(
        [("INSERT INTO a VALUES (?)", [1]), ("INSERT INTO b VALUES (?)", [2])]
    )
    assert statement == "WITH w0 AS (INSERT INTO a VALUES (?)) INSERT INTO b VALUES (?)"
    assert params == [1, 2]
    assert joined([("SELECT ?", [3])]) == ("SELECT ?", [3])
