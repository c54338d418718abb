"""`pipelines dlq list | show | redrive`, run as an operator runs them, against the
session's broker and a `handler` role in this process.

The DLQ holds two messages: one the handler itself dead-lettered (a content-type it does
not take, and no ce_id), and one a handler running with PIPELINES_MAX_MESSAGE_BYTES=2048
left there (too large then; the handler here takes it). Redriving the large one twice
creates its pipeline once; redriving the malformed one answers its rejection again and
puts it back on the DLQ, naming where it was redriven from.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from contracts.cloudevents import encode_command
from contracts.envelope import CE_TYPE, CONTENT_TYPE
from contracts.pipeline_commands import CreatePipeline
from services.adapters.kafka.clients import ensure_topics, make_producer
from services.adapters.kafka.dead_letters import DeadLetter, read_dead_letters
from services.adapters.stores import open_command_store
from services.entrypoints.roles import run_roles
from services.runtimes.command_handler import decode_record
from services.settings import Settings
from tests.entrypoints.cli.test_cli import cli_env, run_cli
from tests.waiting import eventually_async

BIG_COMMAND_ID = str(uuid.uuid4())


@dataclass(frozen=True)
class Consumed:
    """A record as the handler reads one (services.adapters.kafka.batch.Record)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Dlq:
    settings: Settings
    env: dict[str, str]
    cwd: Path
    big: str  # the positions of the two messages
    malformed: str


async def dead_letters(settings: Settings) -> list[DeadLetter]:
    return await read_dead_letters(settings)


@pytest.fixture(scope="module")
async def dlq(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dlq]:
    tmp = tmp_path_factory.mktemp("dlq")
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"test.dlq.{tag}",
        partitions=2,
        event_store_url=f"sqlite:///{tmp / 'events.db'}",
        consumer_group=f"dlq-test-{tag}",
        kafka_session_timeout_ms=6000,
        kafka_fetch_wait_ms=20,
    )
    await ensure_topics(settings)
    big = encode_command(
        CreatePipeline(name="big", description="x" * 3000),
        command_id=BIG_COMMAND_ID,
        source="billing-service",
    )
    # What a handler with a 2048-byte limit made of it (decode_record is its decoding).
    _, too_large = decode_record(
        Consumed(settings.topics.commands, 0, 7, big.key, big.value, big.headers), max_bytes=2048
    )
    assert too_large is not None
    # Sent as a producer with a wrong content type and no command id would.
    wrong = encode_command(CreatePipeline(name="never"))
    headers = [(CE_TYPE, b"CreatePipeline"), (CONTENT_TYPE, b"text/plain")]
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topics.commands_dlq,
            value=too_large.value,
            key=too_large.key,
            headers=too_large.headers,
        )
        await producer.send_and_wait(
            settings.topics.commands, value=wrong.value, key=wrong.key, headers=headers
        )
    finally:
        await producer.stop()
    stop = asyncio.Event()
    roles = asyncio.create_task(run_roles(settings, ["handler"], stop))
    try:
        letters: list[DeadLetter] = []

        async def both_there() -> bool:
            letters[:] = await dead_letters(settings)
            return len(letters) == 2

        await eventually_async(both_there, "the handler to dead-letter the malformed message")
        by_code = {letter.error_code: letter.position for letter in letters}
        yield Dlq(
            settings,
            cli_env(
                PIPELINES_KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
                PIPELINES_TOPIC_PREFIX=settings.topic_prefix,
            ),
            tmp,
            big=by_code["MessageTooLarge"],
            malformed=by_code["MalformedMessage"],
        )
    finally:
        stop.set()
        await asyncio.wait_for(roles, 30)


async def cli(dlq: Dlq, *args: str) -> tuple[int, str, str]:
    return await run_cli("dlq", *args, cwd=dlq.cwd, env=dlq.env)


def json_lines(out: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


async def test_list_and_show_say_what_is_on_the_dlq_and_why(dlq: Dlq) -> None:
    code, out, err = await cli(dlq, "list", "--json")
    assert code == 0, err
    listed = {row["position"]: row for row in json_lines(out)}
    big, malformed = listed[dlq.big], listed[dlq.malformed]
    assert (big["command_type"], big["command_id"], big["key"]) == (
        "CreatePipeline",
        BIG_COMMAND_ID,
        "big",
    )
    assert big["error_code"] == "MessageTooLarge" and big["age_s"] >= 0
    assert (malformed["error_code"], malformed["command_id"]) == ("MalformedMessage", None)
    assert "text/plain" in malformed["error_message"]

    code, out, err = await run_cli("dlq", "list", cwd=dlq.cwd, env={**dlq.env, "COLUMNS": "250"})
    assert code == 0, err
    assert "2 message(s) on the commands DLQ" in out and "MessageTooLarge" in out

    code, out, err = await cli(dlq, "show", dlq.big)
    assert code == 0, err
    shown = orjson.loads(out)
    assert (shown["value_format"], shown["value"]["name"]) == ("json", "big")
    assert shown["headers"]["ce_source"] == "billing-service"
    assert shown["reason"]["dlq_error_code"] == "MessageTooLarge"
    assert orjson.loads(shown["reason"]["dlq_error_details"])["max_bytes"] == 2048

    partition = dlq.big.split(":")[0]
    code, _, err = await cli(dlq, "show", f"{partition}:999")
    assert code == 1 and "no message at" in err
    code, _, err = await cli(dlq, "redrive")
    assert code == 2 and "--all" in err


async def test_a_message_redriven_twice_is_decided_once(dlq: Dlq) -> None:
    code, out, err = await cli(dlq, "redrive", dlq.big)
    assert code == 0, err
    (first,) = json_lines(out)
    assert (first["outcome"], first["command_type"], first["command_id"]) == (
        "accepted",
        "CreatePipeline",
        BIG_COMMAND_ID,
    )
    # The sender stays the one that sent it, not the redrive.
    assert first["sent_by"] == "billing-service"
    assert f"redriven {dlq.big} (command {BIG_COMMAND_ID}): accepted" in err

    code, out, err = await cli(dlq, "redrive", dlq.big)
    assert code == 0, err
    assert json_lines(out) == [first]  # the stored result, not a second decision
    with open_command_store(dlq.settings.event_store_url) as store:
        events = store.recorder.select_events(UUID(first["aggregate_id"]))
        assert [e.originator_version for e in events] == [1]
        stored = store.recorder.select_processed([BIG_COMMAND_ID])  # type: ignore[attr-defined]
        assert orjson.loads(stored[BIG_COMMAND_ID]) == first


async def test_a_message_still_malformed_goes_back_to_the_dlq(dlq: Dlq) -> None:
    code, out, err = await cli(dlq, "redrive", "--all", "--error-code", "MalformedMessage")
    assert code == 1, err
    (rejected,) = json_lines(out)
    # No ce_id: the redrive gave it the one the handler named it by, its first position.
    original = dlq.settings.topics.commands
    assert rejected["command_id"].startswith(f"{original}:")
    assert (rejected["outcome"], rejected["error_code"]) == ("rejected", "MalformedMessage")
    assert "back on the DLQ" in err
    came_back = f"{dlq.settings.topics.commands_dlq}:{dlq.malformed}"

    found: list[DeadLetter] = []

    async def is_back() -> bool:
        letters = await dead_letters(dlq.settings)
        found[:] = [letter for letter in letters if letter.redriven_from == came_back]
        return bool(found)

    await eventually_async(is_back, "the redriven message to come back to the DLQ")
    (again,) = found
    assert (again.error_code, again.command_id) == ("MalformedMessage", rejected["command_id"])
    assert again.reason["dlq_original_topic"] == original
