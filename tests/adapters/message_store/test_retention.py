"""Retention on every message store: an execution's messages go all at once when its
newest is older than the cutoff, a marker says so, and markers go in their turn.

Times are the stores' own `stored_at` (wall clock ns) read around the writes: the cutoff
is a moment taken between two batches, never a sleep."""

from __future__ import annotations

import time
from uuid import UUID, uuid4

from services.adapters.message_store import MessageStore
from tests.adapters.message_store.conftest import Opener
from tests.adapters.message_store.support import EXECUTION, OTHER, message


def _store(store: MessageStore, execution: UUID = EXECUTION, count: int = 2) -> None:
    messages = [message({"n": n}, route="up", execution=execution) for n in range(count)]
    store.store_consumed("fetch", "t.in", messages)
    store.store_produced("fetch", [("t.out", m) for m in messages])


def _moment() -> int:
    """A cutoff strictly after everything stored so far and before anything stored next."""
    before = time.time_ns()
    while time.time_ns() == before:
        pass
    return time.time_ns()


def test_a_sweep_removes_exactly_the_executions_older_than_the_cutoff(open_store: Opener) -> None:
    store = open_store()
    _store(store, EXECUTION)
    cutoff = _moment()
    _store(store, OTHER)

    assert store.sweep(cutoff, 100, now_ns=cutoff + 5) == [EXECUTION]

    assert store.consumed(EXECUTION, "fetch") == []
    assert store.produced(EXECUTION, "fetch") == []
    assert store.routes(EXECUTION) == []
    assert store.swept(EXECUTION) == cutoff + 5
    assert len(store.consumed(OTHER, "fetch")) == 2
    assert len(store.produced(OTHER, "fetch")) == 2
    assert store.swept(OTHER) is None
    assert store.sweep(cutoff, 100) == []  # swept once
    # Another store on the same place (another process) sees the same.
    assert open_store().swept(EXECUTION) == cutoff + 5


def test_an_execution_with_a_newer_message_is_kept_whole(open_store: Opener) -> None:
    store = open_store()
    _store(store, EXECUTION)
    cutoff = _moment()
    _store(store, EXECUTION)  # the same execution, later

    assert store.sweep(cutoff, 100) == []
    assert len(store.consumed(EXECUTION, "fetch")) == 4  # none of the old ones went
    assert store.swept(EXECUTION) is None

    assert store.sweep(_moment(), 100) == [EXECUTION]
    assert store.consumed(EXECUTION, "fetch") == []


def test_a_sweep_takes_at_most_its_batch_a_round(open_store: Opener) -> None:
    store = open_store()
    executions = [uuid4() for _ in range(3)]
    for execution in executions:
        _store(store, execution, count=1)
        _moment()
    cutoff = _moment()

    first = store.sweep(cutoff, 2)
    assert len(first) == 2
    assert set(first) < set(executions)
    assert store.sweep(cutoff, 2) == sorted(set(executions) - set(first))
    assert store.sweep(cutoff, 2) == []


def test_markers_go_after_their_own_window_and_a_reused_execution_ages_again(
    open_store: Opener,
) -> None:
    store = open_store()
    _store(store, EXECUTION)
    _store(store, OTHER)
    swept_at = _moment()
    assert sorted(store.sweep(swept_at, 100, now_ns=swept_at)) == sorted([EXECUTION, OTHER])
    _store(store, OTHER)  # OTHER stores again after its sweep: readable at once
    assert len(store.consumed(OTHER, "fetch")) == 2

    assert store.forget_swept(swept_at, 100) == 0  # not older than the cutoff yet
    assert store.forget_swept(swept_at + 1, 100) == 2
    assert store.swept(EXECUTION) is None
    assert store.swept(OTHER) is None
    assert len(store.consumed(OTHER, "fetch")) == 2  # its new messages stay
    assert store.forget_swept(swept_at + 1, 100) == 0

    assert store.sweep(_moment(), 100) == [OTHER]  # and age like any others
    assert store.consumed(OTHER, "fetch") == []
