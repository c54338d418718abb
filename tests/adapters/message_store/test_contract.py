"""What every message store promises (services.adapters.message_store.interface), for the
files store and the database store on SQLite and PostgreSQL: messages read back as stored,
in stored order across batches, the first copy of a message id winning over re-stores, an
execution with nothing stored reading as empty, and unsafe route ids refused."""

from __future__ import annotations

from uuid import uuid4

import pytest

from contracts.route_messages import RouteMessage, output_message_id
from services.adapters.message_store import MessageStore, ToStore, UnsafeRouteId
from tests.adapters.message_store.conftest import Opener
from tests.adapters.message_store.support import EXECUTION, OTHER, T0, again, message


def test_a_batch_reads_back_as_stored(store: MessageStore) -> None:
    consumed = message({"n": 1, "text": "héllo ✓", "nested": {"list": [1, None, True]}})
    out = RouteMessage(
        id=output_message_id(consumed.id, "a", "t.b", 0),
        execution_id=EXECUTION,
        route="a",
        payload={"n": 2},
        stage=1,
        correlation_id=None,
        time=T0,
    )
    store.store("a", [ToStore("in", consumed, "t.a"), ToStore("out", out, "t.b")])

    [read_in] = store.consumed(EXECUTION, "a")
    [read_out] = store.produced(EXECUTION, "a")
    assert (read_in.message, read_in.topic, read_in.error) == (consumed, "t.a", None)
    assert (read_out.message, read_out.topic, read_out.error) == (out, "t.b", None)
    assert read_in.stored_at == read_out.stored_at > 0  # one batch, one stored_at
    assert store.routes(EXECUTION) == ["a"]


def test_a_batch_over_several_executions_keeps_each_executions_batch_order(
    store: MessageStore,
) -> None:
    mine = [message({"n": n}, route="a", stage=1) for n in range(5)]
    theirs = [message({"n": n}, route="a", stage=1, execution=OTHER) for n in range(3)]
    batch = [ToStore("in", m, "t.b") for pair in zip(mine, theirs, strict=False) for m in pair]
    batch += [ToStore("in", m, "t.b") for m in mine[3:]]
    batch += [ToStore("out", m, "t.c") for m in theirs]
    store.store("b", batch)

    # Each execution's messages in batch order, whatever their ids.
    assert [s.message for s in store.consumed(EXECUTION, "b")] == mine
    assert [s.message for s in store.consumed(OTHER, "b")] == theirs
    assert [s.message for s in store.produced(OTHER, "b")] == theirs
    assert [s.topic for s in store.produced(OTHER, "b")] == ["t.c"] * 3
    assert store.produced(EXECUTION, "b") == []


def test_batches_read_back_in_stored_order(store: MessageStore) -> None:
    messages = [message({"n": n}, route="a", stage=1) for n in range(20)]
    for start in range(0, 20, 3):  # ids are random: they do not give this order
        store.store_consumed("b", "t.b", messages[start : start + 3])
    stored = store.consumed(EXECUTION, "b")
    assert [s.message for s in stored] == messages
    assert [s.stored_at for s in stored] == sorted(s.stored_at for s in stored)


def test_the_first_copy_of_a_message_wins_across_re_stores(store: MessageStore) -> None:
    first, second = message({"attempt": 1}), message({"n": 2}, route="a")
    # Batches stored again after a crash: the repeats change nothing a reader sees.
    store.store_consumed("a", "t.a", [first])
    store.store_consumed("a", "t.a", [again(first, {"attempt": 2}), second], error="late")
    store.store_consumed("a", "t.a", [first, again(second, {"n": 3})])
    assert [(s.message.payload, s.error) for s in store.consumed(EXECUTION, "a")] == [
        ({"attempt": 1}, None),
        ({"n": 2}, "late"),
    ]


def test_the_first_copy_wins_within_a_batch_too(store: MessageStore) -> None:
    first = message({"attempt": 1})
    store.store_consumed("a", "t.a", [first, again(first, {"attempt": 2})])
    assert [s.message.payload for s in store.consumed(EXECUTION, "a")] == [{"attempt": 1}]


def test_a_message_id_is_its_own_in_each_direction_route_and_execution(
    store: MessageStore,
) -> None:
    shared = message({"n": 1}, route="a")
    elsewhere = RouteMessage(**{**shared.__dict__, "execution_id": OTHER})
    store.store("a", [ToStore("in", shared, "t.a"), ToStore("out", shared, "t.b")])
    store.store_consumed("b", "t.b", [shared])
    store.store_consumed("a", "t.a", [elsewhere])
    assert [s.message for s in store.consumed(EXECUTION, "a")] == [shared]
    assert [s.message for s in store.produced(EXECUTION, "a")] == [shared]
    assert [s.message for s in store.consumed(EXECUTION, "b")] == [shared]
    assert [s.message for s in store.consumed(OTHER, "a")] == [elsewhere]


def test_a_failed_message_is_stored_with_its_error(store: MessageStore) -> None:
    ok, bad = message({"n": 1}), message({"n": 2}, route="a")
    store.store("a", [ToStore("in", ok, "t.a"), ToStore("in", bad, "t.a", error="boom")])
    assert [(s.message, s.error) for s in store.consumed(EXECUTION, "a")] == [
        (ok, None),
        (bad, "boom"),
    ]


def test_produced_messages_keep_their_topics(store: MessageStore) -> None:
    one, two = message({"n": 1}, route="a"), message({"n": 2}, route="a")
    store.store_produced("a", [("t.b", one), ("t.c", two)])
    assert [(s.message, s.topic) for s in store.produced(EXECUTION, "a")] == [
        (one, "t.b"),
        (two, "t.c"),
    ]
    assert store.consumed(EXECUTION, "a") == []


def test_an_execution_with_nothing_stored_reads_as_empty(store: MessageStore) -> None:
    store.store("a", [])
    store.store_consumed("a", "t.a", [message({"n": 1}, execution=OTHER)])
    nothing = uuid4()
    for execution in (EXECUTION, nothing):
        assert store.consumed(execution, "a") == []
        assert store.produced(execution, "a") == []
        assert store.routes(execution) == []
    assert store.routes(OTHER) == ["a"]


def test_routes_are_those_that_stored_anything_sorted_by_code_point(store: MessageStore) -> None:
    for route in ("b", "a.x", "B", "a-1", "a_1"):
        store.store_consumed(route, "t", [message({"r": route}, route="z")])
    assert store.routes(EXECUTION) == sorted(["b", "a.x", "B", "a-1", "a_1"])


def test_another_store_on_the_same_place_reads_what_was_stored(open_store: Opener) -> None:
    writer, reader = open_store(), open_store()
    first = message({"n": 1})
    writer.store_consumed("a", "t.a", [first])
    assert [s.message for s in reader.consumed(EXECUTION, "a")] == [first]
    reader.store_consumed("a", "t.a", [again(first, {"n": 2})])
    assert [s.message for s in writer.consumed(EXECUTION, "a")] == [first]


UNSAFE = ["..", "../x", "a/b", "", ".hidden", "-a", "a b", "x" * 201, "a\x00"]


@pytest.mark.parametrize("route", UNSAFE)
def test_an_unsafe_route_id_is_refused(store: MessageStore, route: str) -> None:
    with pytest.raises(UnsafeRouteId) as refused:
        store.store_consumed(route, "t", [message({})])
    assert refused.value.route == route
    assert "cannot be a storage name" in str(refused.value)
    with pytest.raises(UnsafeRouteId):
        store.store(route, [])
    with pytest.raises(UnsafeRouteId):
        store.consumed(EXECUTION, route)
    with pytest.raises(UnsafeRouteId):
        store.produced(EXECUTION, route)
    assert store.routes(EXECUTION) == []


def test_an_unsafe_route_id_is_a_value_error() -> None:
    # Callers that caught the files store's ValueError keep catching it.
    assert issubclass(UnsafeRouteId, ValueError)
