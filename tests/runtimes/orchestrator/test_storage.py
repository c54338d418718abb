"""Message storage: the segment layout replay reads, one durable segment per execution and
direction of a batch, readers merging segments in stored order with the first copy of a
message winning, files of the earlier layout still read, and no way out of the root."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import orjson
import pytest

from contracts.route_messages import RouteMessage, init_message_id, output_message_id
from services.runtimes.orchestrator.storage import MessageStorage, ToStore

EXECUTION = UUID("0190a000-0000-7000-8000-0000000000e1")
OTHER = UUID("0190a000-0000-7000-8000-0000000000e2")
T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
SEGMENT = re.compile(r"(\d{20})-([0-9a-f-]{36})\.jsonl\Z")


def message(
    payload: dict[str, object], *, route: str = "init", stage: int = 0, execution: UUID = EXECUTION
) -> RouteMessage:
    return RouteMessage(
        id=init_message_id(execution) if route == "init" else uuid4(),
        execution_id=execution,
        route=route,
        payload=payload,
        stage=stage,
        correlation_id="corr-1",
        time=T0,
    )


def init_document(
    message_id: UUID, payload: dict[str, object], **more: object
) -> dict[str, object]:
    """An init message's line in a segment (as `message()` makes them), read on `t.a`."""
    return {
        "id": str(message_id),
        "execution_id": str(EXECUTION),
        "route": "init",
        "stage": 0,
        "correlation_id": "corr-1",
        "time": "2026-01-02T03:04:05.678000Z",
        "topic": "t.a",
        **more,
        "payload": payload,
    }


def files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_layout_and_segment_content(tmp_path: Path) -> None:
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
    storage.store("a", [ToStore("in", consumed, "t.a"), ToStore("out", out, "t.b")])

    [in_name] = files(tmp_path / str(EXECUTION) / "a" / "in")
    [out_name] = files(tmp_path / str(EXECUTION) / "a" / "out")
    in_match, out_match = SEGMENT.match(in_name), SEGMENT.match(out_name)
    assert in_match is not None and out_match is not None
    assert in_match[2] == str(consumed.id) and out_match[2] == str(out.id)
    assert in_match[1] == out_match[1]  # one batch, one stored_at
    [document] = [
        orjson.loads(line)
        for line in (tmp_path / str(EXECUTION) / "a" / "in" / in_name).read_bytes().splitlines()
    ]
    assert document.pop("stored_at") == int(in_match[1]) > 0
    assert document == init_document(consumed.id, {"n": 1})
    [read_in] = storage.consumed(EXECUTION, "a")
    [read_out] = storage.produced(EXECUTION, "a")
    assert (read_in.message, read_in.topic, read_in.error) == (consumed, "t.a", None)
    assert (read_out.message, read_out.topic) == (out, "t.b")
    assert storage.routes(EXECUTION) == ["a"]


def test_a_batch_writes_one_segment_per_execution_and_direction(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path)
    mine = [message({"n": n}, route="a", stage=1) for n in range(5)]
    theirs = [message({"n": n}, route="a", stage=1, execution=OTHER) for n in range(3)]
    batch = [ToStore("in", m, "t.b") for pair in zip(mine, theirs, strict=False) for m in pair]
    batch += [ToStore("in", m, "t.b") for m in mine[3:]]
    batch += [ToStore("out", m, "t.c") for m in theirs]
    storage.store("b", batch)

    assert len(files(tmp_path / str(EXECUTION) / "b" / "in")) == 1
    assert len(files(tmp_path / str(OTHER) / "b" / "in")) == 1
    assert len(files(tmp_path / str(OTHER) / "b" / "out")) == 1
    assert not (tmp_path / str(EXECUTION) / "b" / "out").exists()
    # Each execution's messages in batch order, whatever their ids.
    assert [s.message for s in storage.consumed(EXECUTION, "b")] == mine
    assert [s.message for s in storage.consumed(OTHER, "b")] == theirs
    assert [s.message for s in storage.produced(OTHER, "b")] == theirs
    assert [s.topic for s in storage.produced(OTHER, "b")] == ["t.c"] * 3


def test_readers_merge_segments_in_stored_order(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path, fsync=False)
    messages = [message({"n": n}, route="a", stage=1) for n in range(20)]
    for start in range(0, 20, 3):  # ids are random: names do not give this order
        storage.store_consumed("b", "t.b", messages[start : start + 3])
    assert len(files(tmp_path / str(EXECUTION) / "b" / "in")) == 7
    stored = storage.consumed(EXECUTION, "b")
    assert [s.message for s in stored] == messages
    assert [s.stored_at for s in stored] == sorted(s.stored_at for s in stored)


def test_the_first_copy_of_a_message_wins(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path)
    first, second = message({"attempt": 1}), message({"n": 2}, route="a")
    again = RouteMessage(**{**first.__dict__, "payload": {"attempt": 2}})
    storage.store_consumed("a", "t.a", [first])
    # A batch stored again after a crash: the repeat adds a segment, readers keep the first.
    storage.store_consumed("a", "t.a", [again, second])
    storage.store_consumed("a", "t.a", [first, second])
    folder = tmp_path / str(EXECUTION) / "a" / "in"
    assert len(files(folder)) == 3
    assert [s.message.payload for s in storage.consumed(EXECUTION, "a")] == [
        {"attempt": 1},
        {"n": 2},
    ]
    # No temporary files are left behind.
    assert all(SEGMENT.match(name) for name in files(folder))


def test_a_failed_message_is_stored_with_its_error(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path)
    ok, bad = message({"n": 1}), message({"n": 2}, route="a")
    storage.store("a", [ToStore("in", ok, "t.a"), ToStore("in", bad, "t.a", error="boom")])
    assert [(s.message, s.error) for s in storage.consumed(EXECUTION, "a")] == [
        (ok, None),
        (bad, "boom"),
    ]


def test_a_failed_store_leaves_no_files(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path)
    (tmp_path / str(OTHER)).write_bytes(b"not a folder")  # the second segment cannot go there
    batch = [
        ToStore("in", message({"n": 1}), "t.a"),
        ToStore("in", message({"n": 2}, execution=OTHER), "t.a"),
    ]
    with pytest.raises(OSError):
        storage.store("a", batch)
    assert files(tmp_path / str(EXECUTION) / "a" / "in") == []  # its temporary file removed
    assert storage.consumed(EXECUTION, "a") == []


def test_a_segment_being_written_is_not_read(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path)
    stored = message({"n": 1})
    storage.store_consumed("a", "t.a", [stored])
    folder = tmp_path / str(EXECUTION) / "a" / "in"
    (folder / ".half.tmp").write_bytes(b'{"id": "trunc')
    assert [s.message for s in storage.consumed(EXECUTION, "a")] == [stored]


def test_files_of_the_earlier_layout_are_read_in_order(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path)
    old, new = message({"layout": "file"}), message({"layout": "segment"}, route="a")
    folder = tmp_path / str(EXECUTION) / "a" / "in"
    folder.mkdir(parents=True)
    legacy = init_document(old.id, {"layout": "file"}, stored_at=1, error="old error")
    (folder / f"{old.id}.json").write_bytes(orjson.dumps(legacy))
    storage.store_consumed("a", "t.a", [old, new])  # a repeat of the old one: it stays first
    assert [(s.message, s.error) for s in storage.consumed(EXECUTION, "a")] == [
        (old, "old error"),
        (new, None),
    ]


def test_nothing_stored_reads_as_empty(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path / "not-yet")
    assert storage.consumed(EXECUTION, "a") == []
    assert storage.produced(EXECUTION, "a") == []
    assert storage.routes(EXECUTION) == []
    storage.store("a", [])
    assert not (tmp_path / "not-yet").exists()


def test_the_root_is_created_on_first_store(tmp_path: Path) -> None:
    storage = MessageStorage(tmp_path / "deep" / "root")
    storage.store_produced("a", [("t.b", message({"n": 1}, route="a"))])
    assert [s.topic for s in storage.produced(EXECUTION, "a")] == ["t.b"]


@pytest.mark.parametrize("route", ["..", "../x", "a/b", "", ".hidden"])
def test_a_route_id_cannot_leave_the_root(tmp_path: Path, route: str) -> None:
    storage = MessageStorage(tmp_path)
    with pytest.raises(ValueError, match="cannot be a storage folder name"):
        storage.store_consumed(route, "t", [message({})])
    with pytest.raises(ValueError, match="cannot be a storage folder name"):
        storage.consumed(EXECUTION, route)
    assert list(tmp_path.iterdir()) == []
