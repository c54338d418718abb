"""The pure rules of a route worker's batch: decoding, lanes, offsets, output ids; and what
an execution's info says."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import pytest
from aiokafka import TopicPartition

from contracts.envelope import CE_ID
from contracts.route_messages import (
    CE_EXECUTIONID,
    RouteDeadLetterCode,
    RouteMessage,
    encode_route_message,
    output_message_id,
)
from contracts.statuses import RunStatus
from services.adapters.kafka.engine import Batch, PutBack
from services.runtimes.orchestrator.execution_info import (
    ExecutionInfo,
    PatientLookup,
    StopRequested,
)
from services.runtimes.orchestrator.route_batch import (
    Fate,
    Work,
    dead_letter,
    decode,
    lanes,
    outputs_of,
)
from tests.adapters.kafka.fakes import FakeRecord


def record_of(message: RouteMessage, offset: int = 0, partition: int = 0) -> FakeRecord:
    encoded = encode_route_message(message)
    return FakeRecord("t.in", partition, offset, encoded.key, encoded.value, encoded.headers)


def message_of(execution_id: UUID, n: int = 0) -> RouteMessage:
    return RouteMessage(id=uuid4(), execution_id=execution_id, route="a", payload={"n": n})


def test_a_route_message_decodes_to_work_without_a_fate() -> None:
    message = message_of(uuid4())
    work = decode(record_of(message))
    assert work.message is not None and work.message.id == message.id
    assert work.fate is None and work.execution_id == message.execution_id


def test_a_malformed_record_keeps_the_ids_it_has() -> None:
    execution_id, message_id = uuid4(), uuid4()
    headers = [(CE_ID, str(message_id).encode()), (CE_EXECUTIONID, str(execution_id).encode())]
    work = decode(FakeRecord("t.in", 1, 9, b"k", b"[1, 2]", headers))
    assert work.fate is Fate.MALFORMED and work.message is None
    assert work.ids == (execution_id, message_id) and work.execution_id == execution_id
    assert work.error_code is RouteDeadLetterCode.MALFORMED_MESSAGE
    assert work.error == "Message value must be a JSON object, not array"
    record = dead_letter(work, "a")
    assert (record.key, record.value) == (b"k", b"[1, 2]")
    assert record.headers[: len(headers)] == headers
    assert record.header("dlq_original_partition") == "1"
    assert record.header("dlq_original_offset") == "9"
    assert record.header("dlq_route") == "a"


@pytest.mark.parametrize(
    "headers",
    [[], [(CE_ID, b"not-a-uuid"), (CE_EXECUTIONID, str(uuid4()).encode())]],
)
def test_a_malformed_record_without_readable_ids_has_none(headers: list[tuple[str, bytes]]) -> None:
    work = decode(FakeRecord("t.in", 0, 0, None, b"{}", headers))
    assert work.fate is Fate.MALFORMED and work.ids is None and work.execution_id is None


def test_lanes_keep_each_executions_messages_together_and_in_order() -> None:
    executions = [uuid4() for _ in range(8)]
    works = [
        Work(record_of(m), m) for n in range(5) for m in (message_of(e, n) for e in executions)
    ]
    split = lanes(works, 3)
    assert 1 <= len(split) <= 3
    assert sorted(id(w) for lane in split for w in lane) == sorted(id(w) for w in works)
    for execution_id in executions:
        [lane] = [lane for lane in split if any(w.execution_id == execution_id for w in lane)]
        mine = [w.message for w in lane if w.message and w.execution_id == execution_id]
        assert [m.payload["n"] for m in mine] == [0, 1, 2, 3, 4]
    assert lanes(works, 1) == [works]


def test_positions_are_where_to_rewind_and_what_to_commit() -> None:
    p0, p1 = TopicPartition("t.in", 0), TopicPartition("t.in", 1)
    m = message_of(uuid4())
    batch = Batch({p0: [record_of(m, 5), record_of(m, 6)], p1: [record_of(m, 2, 1)]})
    assert (batch.first_offsets, batch.next_offsets) == ({p0: 5, p1: 2}, {p0: 7, p1: 3})


def test_outputs_go_to_every_topic_with_derived_ids_and_the_inputs_scope() -> None:
    source = RouteMessage(
        id=uuid4(), execution_id=uuid4(), route="init", payload={}, correlation_id="c-1"
    )
    outputs = outputs_of(source, "a", ["t.b", "t.c"], [{"n": 0}, {"n": 1}], 2)
    assert [(topic, m.payload["n"]) for topic, m in outputs] == [
        ("t.b", 0), ("t.c", 0), ("t.b", 1), ("t.c", 1)
    ]  # fmt: skip
    for topic, message in outputs:
        assert message.id == output_message_id(source.id, "a", topic, message.payload["n"])
        assert (message.execution_id, message.route, message.stage, message.correlation_id) == (
            source.execution_id, "a", 2, "c-1"
        )  # fmt: skip
    again = outputs_of(source, "a", ["t.b", "t.c"], [{"n": 0}, {"n": 1}], 2)
    assert [m.id for _, m in again] == [m.id for _, m in outputs]  # produced again: same ids


@pytest.mark.parametrize("status", list(RunStatus))
def test_an_execution_is_finished_in_a_terminal_status(status: RunStatus) -> None:
    info = ExecutionInfo.from_row(
        {
            "id": str(uuid4()),
            "config_id": str(uuid4()),
            "status": status.value,
            "skip_init_message": 0,
            "init_route": "a",
        }
    )
    terminal = {"success", "failure", "cancelled", "timeout", "invalid", "interrupted"}
    assert info.finished is (status.value in terminal)
    assert (info.skip_init_message, info.init_route) == (False, "a")


def _info(execution_id: UUID) -> ExecutionInfo:
    return ExecutionInfo(execution_id, uuid4(), "running", False, "a")


async def test_the_patient_lookup_asks_again_until_the_execution_is_known() -> None:
    known, late = uuid4(), uuid4()
    asks: list[UUID] = []

    async def lookup(execution_id: UUID) -> ExecutionInfo | None:
        asks.append(execution_id)
        return None if execution_id == late and asks.count(late) < 3 else _info(execution_id)

    infos = await PatientLookup(lookup, 60.0, asyncio.Event()).infos([known, late])
    assert {e: i is not None for e, i in infos.items()} == {known: True, late: True}
    assert (asks.count(known), asks.count(late)) == (1, 3)


async def test_the_patient_lookup_asks_only_once_about_what_it_need_not_wait_for() -> None:
    unknown = uuid4()
    asks: list[UUID] = []

    async def lookup(execution_id: UUID) -> ExecutionInfo | None:
        asks.append(execution_id)
        return None

    patient = PatientLookup(lookup, 60.0, asyncio.Event())
    assert await patient.infos([], ask_once=[unknown]) == {unknown: None}
    assert asks == [unknown]
    # With no grace left, an unknown execution answers None at once.
    assert await PatientLookup(lookup, 0.0, asyncio.Event()).infos([unknown]) == {unknown: None}


async def test_stopping_ends_the_wait_for_an_unknown_execution() -> None:
    stopping = asyncio.Event()

    async def lookup(execution_id: UUID) -> ExecutionInfo | None:
        stopping.set()  # asked to stop while the batch waits
        return None

    with pytest.raises(StopRequested):
        await PatientLookup(lookup, 60.0, stopping).infos([uuid4()])
    # The engine puts such a batch back: not committed, and not counted as a failure.
    assert issubclass(StopRequested, PutBack)
