"""The ledger on SQLite and PostgreSQL: idempotent marks, the drained rule, and the batch
reads a route worker makes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.runtimes.orchestrator.ledger import Ledger, RouteCounts, RouteProgress


@pytest.fixture
def ledger(store_url: str) -> Iterator[Ledger]:
    opened = Ledger(store_url)
    yield opened
    opened.close()


def test_an_execution_without_rows_has_not_drained(ledger: Ledger) -> None:
    execution = uuid4()
    assert ledger.counts(execution) == {}
    assert not ledger.drained(execution)
    assert not ledger.failed_any(execution)


def test_drained_when_every_expected_message_is_consumed(ledger: Ledger) -> None:
    execution, init, m1, m2 = uuid4(), uuid4(), uuid4(), uuid4()
    ledger.expect(execution, [("a", init)])
    assert not ledger.drained(execution)
    ledger.expect(execution, [("b", m1), ("c", m2)])
    ledger.consume(execution, "a", [init])
    ledger.consume(execution, "b", [m1])
    assert not ledger.drained(execution)
    ledger.consume(execution, "c", [m2])
    assert ledger.drained(execution)
    assert ledger.counts(execution) == {
        "a": RouteCounts(1, 1, 0),
        "b": RouteCounts(1, 1, 0),
        "c": RouteCounts(1, 1, 0),
    }


def test_marks_are_idempotent(ledger: Ledger) -> None:
    execution, m1 = uuid4(), uuid4()
    for _ in range(3):
        ledger.expect(execution, [("a", m1), ("a", m1)])
        ledger.consume(execution, "a", [m1, m1])
    assert ledger.counts(execution) == {"a": RouteCounts(1, 1, 0)}
    assert ledger.drained(execution)


def test_a_consumed_message_nobody_expected_keeps_it_from_draining(ledger: Ledger) -> None:
    execution, m1, stray = uuid4(), uuid4(), uuid4()
    ledger.expect(execution, [("a", m1)])
    ledger.consume(execution, "a", [m1, stray])
    assert ledger.counts(execution) == {"a": RouteCounts(1, 2, 0)}
    assert not ledger.drained(execution)
    ledger.expect(execution, [("a", stray)])  # an expectation may come after the fact
    assert ledger.drained(execution)


def test_a_failed_message_fails_the_execution_and_blocks_draining(ledger: Ledger) -> None:
    execution, m1, m2 = uuid4(), uuid4(), uuid4()
    ledger.expect(execution, [("a", m1), ("a", m2)])
    ledger.consume(execution, "a", [m1])
    ledger.fail(execution, "a", [m2])
    assert ledger.failed_any(execution)
    assert ledger.counts(execution) == {"a": RouteCounts(2, 1, 1)}
    ledger.consume(execution, "a", [m2])
    assert not ledger.drained(execution)


def test_executions_and_routes_are_counted_apart(ledger: Ledger) -> None:
    first, second, m1 = uuid4(), uuid4(), uuid4()
    ledger.expect(first, [("a", m1), ("b", m1)])
    ledger.consume(first, "a", [m1])
    ledger.fail(second, "a", [m1])
    assert ledger.counts(first) == {"a": RouteCounts(1, 1, 0), "b": RouteCounts(1, 0, 0)}
    assert ledger.counts(second) == {"a": RouteCounts(0, 0, 1)}
    assert not ledger.failed_any(first) and ledger.failed_any(second)


def test_already_consumed_means_consumed_or_failed_by_that_route(ledger: Ledger) -> None:
    execution, m1, m2, m3 = uuid4(), uuid4(), uuid4(), uuid4()
    ledger.expect(execution, [("a", m1), ("a", m2), ("a", m3)])
    ledger.consume(execution, "a", [m1])
    ledger.fail(execution, "a", [m2])
    assert ledger.already_consumed(execution, "a", m1)
    assert ledger.already_consumed(execution, "a", m2)
    assert not ledger.already_consumed(execution, "a", m3)  # only expected
    assert not ledger.already_consumed(execution, "b", m1)  # another route
    assert not ledger.already_consumed(uuid4(), "a", m1)  # another execution


def test_the_batch_read_spans_executions(ledger: Ledger) -> None:
    executions = [uuid4() for _ in range(3)]
    handled: set[tuple[UUID, UUID]] = set()
    asked: list[tuple[UUID, UUID]] = []
    rows = []
    for n, execution in enumerate(executions):
        ids = [uuid4() for _ in range(600)]  # more than one chunk of parameters
        asked += [(execution, m) for m in ids]
        rows += [(execution, "a", m) for m in ids[: 200 * (n + 1)]]
        handled |= {(execution, m) for m in ids[: 200 * (n + 1)]}
    ledger.expect_many(rows)
    ledger.consume_many(rows[:500])
    ledger.fail_many(rows[500:])
    # The same message id under another execution is not the message asked about.
    asked.append((uuid4(), rows[0][2]))
    assert ledger.consumed_among("a", asked) == handled
    assert ledger.consumed_among("b", asked) == set()
    assert ledger.consumed_among("a", []) == set()


def test_two_ledgers_share_one_database(store_url: str) -> None:
    first, second = Ledger(store_url), Ledger(store_url)
    try:
        execution, m1 = uuid4(), uuid4()
        first.expect(execution, [("a", m1)])
        second.consume(execution, "a", [m1])
        assert first.drained(execution) and second.drained(execution)
    finally:
        first.close()
        second.close()


def test_a_batch_settles_in_one_transaction(ledger: Ledger) -> None:
    execution, m1, m2, out = uuid4(), uuid4(), uuid4(), uuid4()
    ledger.expect(execution, [("a", m1), ("a", m2), ("b", out)])
    for _ in range(2):  # a batch settled again after a crash changes nothing
        ledger.settle_many(
            produced=[(execution, "a", out)],
            consumed=[(execution, "a", m1)],
            failed=[(execution, "a", m2)],
        )
    assert ledger.counts(execution) == {"a": RouteCounts(2, 1, 1), "b": RouteCounts(1, 0, 0)}
    progress = ledger.progress([execution])[execution]
    assert progress.of("a") == RouteProgress(2, 1, 1, 0)
    assert progress.failed and not progress.drained


def test_a_batch_that_cannot_settle_leaves_nothing_behind(ledger: Ledger) -> None:
    execution, m1, out = uuid4(), uuid4(), uuid4()
    ledger.expect(execution, [("a", m1)])
    unbindable: Any = object()  # no database can store it: the consuming statement fails
    with pytest.raises(Exception):  # noqa: B017 - each driver raises its own error
        ledger.settle_many(produced=[(execution, "a", out)], consumed=[(execution, unbindable, m1)])
    # The outputs written before the failing statement were rolled back with it.
    assert ledger.progress([execution])[execution].of("a") == RouteProgress(0, 0, 0, 1)
    assert ledger.counts(execution) == {"a": RouteCounts(1, 0, 0)}


def test_drained_among_answers_for_many_executions_at_once(ledger: Ledger) -> None:
    drained = [uuid4() for _ in range(450)]  # more than one chunk of parameters
    waiting, failed, unknown = uuid4(), uuid4(), uuid4()
    rows = [(e, "a", uuid4()) for e in [*drained, waiting, failed]]
    ledger.expect_many(rows)
    ledger.settle_many(produced=[], consumed=rows[: len(drained)], failed=[rows[-1]])
    ledger.consume_many([rows[-1]])  # consumed and failed is still failed
    ledger.expect(waiting, [("b", uuid4())])
    ledger.consume_many([rows[-2]])  # its route a is done, route b is not
    asked = [*drained, waiting, failed, unknown]
    assert ledger.drained_among(asked) == set(drained)
    assert ledger.drained_among(asked) == {e for e in asked if ledger.drained(e)}
    assert ledger.drained_among([]) == set()
