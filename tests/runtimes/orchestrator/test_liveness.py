"""Orchestrator heartbeats and the RunConfig gate, on SQLite and PostgreSQL: who is alive,
503 OrchestratorUnavailable without a fresh beat, 503 ExecutionCapacityReached at the
limit (read model plus what was admitted and is not projected yet, same batch included),
503s not remembered so the same command id succeeds later, and the handler role wiring
the gate for real."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import pytest

from contracts import (
    CommandAccepted,
    CommandRejected,
    CreateConfig,
    CreatePipeline,
    CreateRun,
    RunConfig,
    encode_command,
)
from contracts.orchestrator_commands import DecideExecution, ExecutionDecision
from domain.errors import RetryableError
from projections.projector import Projector
from projections.store import ReadStore
from services.adapters.kafka.clients import ensure_topics
from services.adapters.stores import open_command_store
from services.entrypoints.roles import run_handler
from services.runtimes.orchestrator.liveness import ExecutionGate, Heartbeats, open_gate
from services.runtimes.projector import history
from services.service_layer.decider import Decider, Outcome
from services.service_layer.handlers import HANDLERS
from tests.runtimes.command_handler.consumer_support import (
    by_command_id,
    producer_for,
    read_topic,
    result_of,
    send_all,
    settings_for,
)
from tests.service_layer.decider_support import (
    Clock,
    accepted,
    config_document,
    decide_one,
    item,
    rejected,
)

LIVENESS_S = 10.0


@dataclass
class Ticker:
    """A clock the test moves by hand (wall-clock seconds or monotonic seconds)."""

    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# --- heartbeats ----------------------------------------------------------------------------


@pytest.fixture
def wall() -> Ticker:
    return Ticker()


@pytest.fixture
def beats(store_url: str, wall: Ticker) -> Iterator[Heartbeats]:
    heartbeats = Heartbeats(store_url, clock=wall)
    yield heartbeats
    heartbeats.close()


def test_a_beat_is_alive_until_it_is_older_than_the_window(
    beats: Heartbeats, store_url: str, wall: Ticker
) -> None:
    assert beats.alive(LIVENESS_S) == []
    beats.beat("orch-b", capacity=5)
    beats.beat("orch-a", capacity=7)
    reader = Heartbeats(store_url, clock=wall)  # another process's connection
    try:
        found = reader.alive(LIVENESS_S)
        assert [(b.instance_id, b.capacity) for b in found] == [("orch-a", 7), ("orch-b", 5)]
        assert found[0].beat_at == datetime.fromtimestamp(wall.now, UTC)
        wall.now += 6
        beats.beat("orch-a", capacity=3)  # a beat replaces the instance's last one
        wall.now += 5  # orch-b: 11 s old, orch-a: 5 s
        assert [(b.instance_id, b.capacity) for b in reader.alive(LIVENESS_S)] == [("orch-a", 3)]
        beats.forget("orch-a")
        assert reader.alive(LIVENESS_S) == []
    finally:
        reader.close()


# --- the gate ------------------------------------------------------------------------------


@dataclass
class Stack:
    decider: Decider
    beats: Heartbeats
    gate: ExecutionGate
    read: ReadStore
    wall: Ticker
    mono: Ticker
    config_id: UUID

    def run(self, command_id: str | None = None, **fields: object) -> Outcome:
        command = RunConfig(config_id=self.config_id, **fields)
        (outcome,) = self.decider.decide([item(command, command_id)])
        return outcome

    def project(self) -> None:
        """What the projector would have done by now."""
        Projector(self.read).apply_batch(history(self.decider.store))

    def later(self) -> None:
        """Past the gate's cache: its next answer reads the database again."""
        self.mono.now += 1.0

    def end(self, run: CommandAccepted, decision: ExecutionDecision) -> None:
        """The accepted run's execution decided (completed or failed)."""
        assert run.aggregate_id is not None and run.aggregate_version is not None
        decide = DecideExecution(
            execution_id=UUID(run.aggregate_id),
            decision=decision,
            expected_version=run.aggregate_version,
        )
        accepted(decide_one(self.decider, decide))


@pytest.fixture
def stack(store_url: str, wall: Ticker) -> Iterator[Stack]:
    mono = Ticker(0.0)
    orchestrator = Heartbeats(store_url, clock=wall)
    gate = ExecutionGate(
        Heartbeats(store_url, clock=wall), liveness_s=LIVENESS_S, max_running=2, monotonic=mono
    )
    read = ReadStore(store_url)
    with open_command_store(store_url) as store:
        decider = Decider(store, HANDLERS, clock=Clock(), gate=gate)
        config = CreateConfig(name="crawler", document=config_document())
        accepted(decide_one(decider, config))
        yield Stack(decider, orchestrator, gate, read, wall, mono, config.config_id)
    read.close()
    gate.close()
    orchestrator.close()


def refusal(outcome: Outcome) -> CommandRejected:
    result = rejected(outcome.result)
    assert result.http_status == 503
    return result


def test_without_a_live_orchestrator_run_config_is_503_and_not_remembered(stack: Stack) -> None:
    refused = refusal(stack.run("run-1", tag="nightly"))
    assert (refused.error_code, refused.message, refused.details) == (
        "OrchestratorUnavailable",
        "No orchestrator is alive (none sent a heartbeat in the last 10 s): "
        "the execution cannot run now; try again later",
        {"liveness_s": LIVENESS_S},
    )
    assert refused.command_type == "RunConfig"
    assert stack.decider.recorder.select_processed(["run-1"]) == {}

    stack.beats.beat("orch-1", capacity=10)
    stack.later()
    # The same command id is decided again, and its tag was never taken.
    result = accepted(stack.run("run-1", tag="nightly").result)
    assert (result.http_status, result.reply["tag"]) == (200, "nightly")
    assert set(stack.decider.recorder.select_processed(["run-1"])) == {"run-1"}

    stack.wall.now += LIVENESS_S + 1  # the orchestrator stopped beating
    stack.later()
    assert refusal(stack.run()).error_code == "OrchestratorUnavailable"


def test_the_gate_answers_from_its_cache_within_a_second(stack: Stack) -> None:
    assert refusal(stack.run()).error_code == "OrchestratorUnavailable"
    stack.beats.beat("orch-1", capacity=10)
    stack.mono.now += 0.5
    assert refusal(stack.run()).error_code == "OrchestratorUnavailable"
    stack.mono.now += 0.5
    accepted(stack.run().result)


def test_capacity_counts_unprojected_executions_then_the_read_model(stack: Stack) -> None:
    stack.beats.beat("orch-1", capacity=10)
    first = accepted(stack.run().result)
    accepted(stack.run().result)  # admitted, not projected: counted by the gate itself
    full = refusal(stack.run())
    assert (full.error_code, full.details) == (
        "ExecutionCapacityReached",
        {
            "running": 2,
            "limit": 2,
            "max_running_executions": 2,
            "orchestrators": 1,
            "orchestrator_capacity": 10,
        },
    )
    assert full.message == (
        "2 config executions are running and the limit is 2: try again when one has finished"
    )
    stack.project()
    stack.later()  # now counted from the read model alone
    assert refusal(stack.run()).details["running"] == 2

    # One finishes: once the read model shows it, there is room again.
    stack.end(first, ExecutionDecision.FAIL)
    assert refusal(stack.run()).error_code == "ExecutionCapacityReached"  # cached
    stack.project()
    stack.later()
    accepted(stack.run().result)


def test_a_batch_counts_its_own_earlier_executions(stack: Stack) -> None:
    stack.beats.beat("orch-1", capacity=10)
    commands = [RunConfig(config_id=stack.config_id, tag=f"t{i}") for i in range(3)]
    outcomes = stack.decider.decide([item(c) for c in commands])
    assert [o.result.outcome for o in outcomes] == ["accepted", "accepted", "rejected"]
    assert refusal(outcomes[2]).error_code == "ExecutionCapacityReached"
    # The refused command left nothing behind: no execution, and its tag is free.
    assert stack.decider.store.recorder.select_events(commands[2].execution_id) == []
    stack.project()
    stack.later()
    assert refusal(stack.run(tag="t2")).details["running"] == 2


def test_the_live_orchestrators_capacity_caps_below_the_setting(stack: Stack) -> None:
    stack.beats.beat("orch-1", capacity=1)
    accepted(stack.run().result)
    full = refusal(stack.run())
    assert (full.details["limit"], full.details["orchestrator_capacity"]) == (1, 1)
    stack.beats.beat("orch-2", capacity=1)
    stack.later()
    accepted(stack.run().result)


def test_pipeline_runs_and_finished_executions_do_not_count(stack: Stack) -> None:
    stack.beats.beat("orch-1", capacity=10)
    done = accepted(stack.run().result)
    stack.end(done, ExecutionDecision.COMPLETE)
    pipeline = CreatePipeline(name="orders", config_id=stack.config_id)
    accepted(decide_one(stack.decider, pipeline))
    for _ in range(2):  # pending pipeline runs (seed 003), not config executions
        accepted(decide_one(stack.decider, CreateRun(pipeline_id="orders")))
    stack.project()
    stack.later()
    accepted(stack.run().result)
    accepted(stack.run().result)
    assert refusal(stack.run()).details["running"] == 2


def test_the_503s_are_retryable_errors() -> None:
    from services.runtimes.orchestrator.liveness import orchestrator_unavailable

    error = orchestrator_unavailable(LIVENESS_S)
    assert isinstance(error, RetryableError)
    assert (error.http_status, error.retry_after) == (503, 5)


# --- the handler role ------------------------------------------------------------------


async def test_the_handler_role_always_consults_the_gate(
    kafka_bootstrap: str, sqlite_url: str
) -> None:
    settings = settings_for(kafka_bootstrap, sqlite_url)
    await ensure_topics(settings)
    config = CreateConfig(name="crawler", document=config_document())
    run = RunConfig(config_id=config.config_id)
    records = [
        encode_command(config, command_id="create"),
        encode_command(run, command_id="run-without-orchestrator"),
    ]
    stop = asyncio.Event()
    role = asyncio.create_task(run_handler(settings, stop, lambda: None))
    try:
        async with producer_for(settings) as producer:
            await send_all(producer, settings.topics.commands, records)
        results = by_command_id(await read_topic(settings, settings.topics.command_results, 2))
    finally:
        stop.set()
        await asyncio.wait_for(role, 30)
    accepted(result_of(results["create"][0]))
    refused = rejected(result_of(results["run-without-orchestrator"][0]))
    assert (refused.error_code, refused.http_status) == ("OrchestratorUnavailable", 503)
    gate = open_gate(settings)  # the role's own gate, on the same database
    try:
        assert gate.heartbeats.alive(settings.orchestrator_liveness_s) == []
    finally:
        gate.close()
