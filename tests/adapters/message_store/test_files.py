"""The files store's own promises: the segment layout replay reads, one durable segment
per execution and direction of a batch, repeats adding later segments, files of the
earlier layout still read, nothing half-written ever read, and no way out of the root."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID

import orjson
import pytest

from contracts.route_messages import RouteMessage, output_message_id
from services.adapters.message_store import FileMessageStore, ToStore
from tests.adapters.message_store.support import EXECUTION, OTHER, T0, again, message

SEGMENT = re.compile(r"(\d{20})-([0-9a-f-]{36})\.jsonl\Z")


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
    storage = FileMessageStore(tmp_path)
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
    raw = (tmp_path / str(EXECUTION) / "a" / "in" / in_name).read_bytes()
    [document] = [orjson.loads(line) for line in raw.splitlines()]
    assert list(document) == [  # the line's keys, in the order they are written
        "id",
        "execution_id",
        "route",
        "stage",
        "correlation_id",
        "time",
        "topic",
        "stored_at",
        "payload",
    ]
    assert document.pop("stored_at") == int(in_match[1]) > 0
    assert document == init_document(consumed.id, {"n": 1})


def test_a_batch_writes_one_segment_per_execution_and_direction(tmp_path: Path) -> None:
    storage = FileMessageStore(tmp_path)
    mine = [message({"n": n}, route="a", stage=1) for n in range(5)]
    theirs = [message({"n": n}, route="a", stage=1, execution=OTHER) for n in range(3)]
    batch = [ToStore("in", m, "t.b") for m in mine + theirs]
    batch += [ToStore("out", m, "t.c") for m in theirs]
    storage.store("b", batch)

    assert len(files(tmp_path / str(EXECUTION) / "b" / "in")) == 1
    assert len(files(tmp_path / str(OTHER) / "b" / "in")) == 1
    assert len(files(tmp_path / str(OTHER) / "b" / "out")) == 1
    assert not (tmp_path / str(EXECUTION) / "b" / "out").exists()


def test_each_batch_is_a_segment_of_its_own(tmp_path: Path) -> None:
    storage = FileMessageStore(tmp_path, fsync=False)
    messages = [message({"n": n}, route="a", stage=1) for n in range(20)]
    for start in range(0, 20, 3):
        storage.store_consumed("b", "t.b", messages[start : start + 3])
    assert len(files(tmp_path / str(EXECUTION) / "b" / "in")) == 7
    assert [s.message for s in storage.consumed(EXECUTION, "b")] == messages


def test_a_repeat_adds_a_segment_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    storage = FileMessageStore(tmp_path)
    first = message({"attempt": 1})
    storage.store_consumed("a", "t.a", [first])
    storage.store_consumed("a", "t.a", [again(first, {"attempt": 2})])
    folder = tmp_path / str(EXECUTION) / "a" / "in"
    assert len(files(folder)) == 2
    assert all(SEGMENT.match(name) for name in files(folder))
    assert [s.message.payload for s in storage.consumed(EXECUTION, "a")] == [{"attempt": 1}]


def test_a_failed_store_leaves_no_files(tmp_path: Path) -> None:
    storage = FileMessageStore(tmp_path)
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
    storage = FileMessageStore(tmp_path)
    stored = message({"n": 1})
    storage.store_consumed("a", "t.a", [stored])
    folder = tmp_path / str(EXECUTION) / "a" / "in"
    (folder / ".half.tmp").write_bytes(b'{"id": "trunc')
    (folder / "notes.txt").write_bytes(b"not a segment")
    assert [s.message for s in storage.consumed(EXECUTION, "a")] == [stored]


def test_files_of_the_earlier_layout_are_read_in_order(tmp_path: Path) -> None:
    storage = FileMessageStore(tmp_path)
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


def test_nothing_stored_creates_no_root(tmp_path: Path) -> None:
    storage = FileMessageStore(tmp_path / "not-yet")
    assert storage.routes(EXECUTION) == []
    storage.store("a", [])
    assert not (tmp_path / "not-yet").exists()


def test_the_root_is_created_on_first_store(tmp_path: Path) -> None:
    storage = FileMessageStore(tmp_path / "deep" / "root")
    storage.store_produced("a", [("t.b", message({"n": 1}, route="a"))])
    assert [s.topic for s in storage.produced(EXECUTION, "a")] == ["t.b"]


@pytest.mark.parametrize("route", ["..", "../x", "a/b", ".hidden"])
def test_a_route_id_cannot_leave_the_root(tmp_path: Path, route: str) -> None:
    storage = FileMessageStore(tmp_path / "root")
    with pytest.raises(ValueError, match="cannot be a storage name"):
        storage.store_consumed(route, "t", [message({})])
    assert list(tmp_path.iterdir()) == []


def test_a_closed_store_opens_its_flush_threads_again_when_used(tmp_path: Path) -> None:
    storage = FileMessageStore(tmp_path)
    batch = [ToStore("in", message({"n": 1}), "t.a"), ToStore("out", message({}, route="a"), "t")]
    storage.store("a", batch)  # two segments: flushed by the thread pool
    storage.close()
    storage.store("b", batch)
    storage.close()
    assert storage.routes(EXECUTION) == ["a", "b"]
