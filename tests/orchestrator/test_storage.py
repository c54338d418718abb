"""Message storage: the layout replay reads, atomic first-write-wins files, readers in
stored order, and no way out of the root."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import orjson
import pytest

from contracts.route_messages import RouteMessage, init_message_id, output_message_id
from services.orchestrator.storage import MessageStorage

EXECUTION = UUID("0190a000-0000-7000-8000-0000000000e1")
T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def message(payload: dict[str, object], *, route: str = "init", stage: int = 0) -> RouteMessage:
    return RouteMessage(
        id=init_message_id(EXECUTION) if route == "init" else uuid4(),
        execution_id=EXECUTION,
        route=route,
        payload=payload,
        stage=stage,
        correlation_id="corr-1",
        time=T0,
    )


def test_layout_and_file_content(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path)
    consumed = message({"n": 1})
    out = RouteMessage(
        id=output_message_id(consumed.id, "a", "t.b", 0),
        execution_id=EXECUTION,
        route="a",
        payload={"n": 2},
        stage=1,
        correlation_id="corr-1",
        time=T0,
    )
    storage.store_consumed("a", "t.a", [consumed])
    storage.store_produced("a", [("t.b", out)])

    in_file = tmp_path / str(EXECUTION) / "a" / "in" / f"{consumed.id}.json"
    out_file = tmp_path / str(EXECUTION) / "a" / "out" / f"{out.id}.json"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.json")) == sorted(
        [in_file.relative_to(tmp_path), out_file.relative_to(tmp_path)]
    )
    document = orjson.loads(in_file.read_bytes())
    assert document.pop("stored_at") > 0
    assert document == {
        "id": str(consumed.id),
        "execution_id": str(EXECUTION),
        "route": "init",
        "stage": 0,
        "correlation_id": "corr-1",
        "time": "2026-01-02T03:04:05.678000Z",
        "topic": "t.a",
        "payload": {"n": 1},
    }
    [read_in] = storage.consumed(EXECUTION, "a")
    [read_out] = storage.produced(EXECUTION, "a")
    assert (read_in.message, read_in.topic, read_in.error) == (consumed, "t.a", None)
    assert (read_out.message, read_out.topic) == (out, "t.b")
    assert storage.routes(EXECUTION) == ["a"]


def test_readers_return_messages_in_stored_order(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path, fsync=False)
    messages = [message({"n": n}, route="a", stage=1) for n in range(20)]
    for item in messages:  # ids are random: file names do not give this order
        storage.store_consumed("b", "t.b", [item])
    assert [s.message for s in storage.consumed(EXECUTION, "b")] == messages
    stamps = [s.stored_at for s in storage.consumed(EXECUTION, "b")]
    assert stamps == sorted(stamps)


def test_the_first_write_of_an_id_wins(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path)
    first = message({"attempt": 1})
    again = RouteMessage(**{**first.__dict__, "payload": {"attempt": 2}})
    storage.store_consumed("a", "t.a", [first])
    storage.store_consumed("a", "t.a", [again])
    assert [s.message.payload for s in storage.consumed(EXECUTION, "a")] == [{"attempt": 1}]
    # No temporary files are left behind.
    assert [p.name for p in (tmp_path / str(EXECUTION) / "a" / "in").iterdir()] == [
        f"{first.id}.json"
    ]


def test_a_failed_message_is_stored_with_its_error(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path)
    storage.store_consumed("a", "t.a", [message({"n": 1})], error="boom")
    [stored] = storage.consumed(EXECUTION, "a")
    assert stored.error == "boom"


def test_nothing_stored_reads_as_empty(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path / "not-yet")
    assert storage.consumed(EXECUTION, "a") == []
    assert storage.produced(EXECUTION, "a") == []
    assert storage.routes(EXECUTION) == []


@pytest.mark.parametrize("route", ["..", "../x", "a/b", "", ".hidden"])
def test_a_route_id_cannot_leave_the_root(tmp_path: Path, route: str) -> None:
    storage = MessageStorage(tmp_path)
    with pytest.raises(ValueError, match="cannot be a storage folder name"):
        storage.store_consumed(route, "t", [message({})])
    with pytest.raises(ValueError, match="cannot be a storage folder name"):
        storage.consumed(EXECUTION, route)
