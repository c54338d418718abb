"""A config changed between a pipeline's checkpoint and its next start, under each
bootstrap policy, and `/checkpoint` on a running pipeline: end to end, with a real
reconciler (one stack for the module)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.runtimes.reconciler.support import (
    Outbound,
    Stack,
    module_stack,
    new_tag,
    route_document,
)
from tests.waiting import eventually_async

stack = module_stack("boot")


def document(tag: str, seen: str) -> str:
    """The test route, its output marked `seen`: the mark tells the config versions apart."""
    adapter = {"type": "map", "config": {"fields": {"n": "{payload[n]}", "seen": seen}}}
    return route_document(tag, adapters=[adapter])


class Changed:
    """A pipeline stopped with a checkpoint after message 1 (config version 1), its config
    then updated to version 2, and message 2 published while it was stopped."""

    def __init__(self, stack: Stack, name: str, pipeline_id: uuid.UUID, out: Outbound) -> None:
        self.stack, self.name, self.pipeline_id, self.out = stack, name, pipeline_id, out

    async def outputs(self) -> list[tuple[Any, Any]]:
        return sorted((p["n"], p["seen"]) for p in await self.out.read())


@pytest.fixture
async def changed(stack: Stack) -> AsyncIterator[Changed]:
    tag = new_tag()
    name, config_id = await stack.create_pipeline_and_config(document(tag, "v1"))
    inbound = f"test.rec.{tag}.in"
    running = await stack.act(name, "start", "Running")
    pipeline_id = uuid.UUID(running["id"])
    async with Outbound(stack.settings, f"test.rec.{tag}.out") as out:
        await stack.through(inbound, out, 1)
        await stack.act(name, "stop", "Stopped", force="false")
        head = await asyncio.to_thread(stack.checkpoint_head, pipeline_id)
        assert head is not None
        assert (str(head.config_id), head.config_version) == (config_id, 1)

        assert await stack.update_config(config_id, document(tag, "v2")) == 2
        # The pipeline's program is validated again; a start waits for it (early start).
        await stack.publish(inbound, {"n": 2})
        yield Changed(stack, name, pipeline_id, out)
    await stack.action(name, "stop", force="true")
    await stack.until_status(name, "Stopped")


async def test_allow_starts_the_changed_config_from_the_checkpoint(changed: Changed) -> None:
    stack, name = changed.stack, changed.name
    await stack.act(name, "start", "Running", bootstrap_policy="allow")
    await changed.out.until(2)
    assert await changed.outputs() == [(1, "v1"), (2, "v2")]


async def test_reject_stops_the_pipeline_with_bootstrap_rejected(changed: Changed) -> None:
    stack, name = changed.stack, changed.name
    assert (await stack.action(name, "start", bootstrap_policy="reject")).status_code == 202
    found = await stack.until_stopped_with_error(name)
    assert found["deployment_error"]["error_code"] == "BootstrapRejected"
    assert found["deployment_desired_status"] == "Stopped"
    assert await changed.outputs() == [(1, "v1")]  # message 2 was never processed
    # The checkpoint is still the one taken at version 1.
    head = await asyncio.to_thread(stack.checkpoint_head, changed.pipeline_id)
    assert head is not None and head.config_version == 1


async def test_await_approval_waits_for_approve_then_runs(changed: Changed) -> None:
    stack, name = changed.stack, changed.name
    assert (await stack.action(name, "start")).status_code == 202  # await_approval: default
    waiting = await stack.until_status(name, "AwaitingApproval")
    diff = waiting["deployment_runtime_status_details"]["approval_diff"]
    assert (diff["checkpoint"]["config_version"], diff["current"]["config_version"]) == (1, 2)
    # Two whole sweeps with message 2 on the broker: nothing consumed while it waits.
    await stack.driver.sweeps(2)
    assert (await stack.pipeline(name))["deployment_status"] == "AwaitingApproval"
    assert await changed.outputs() == [(1, "v1")]

    running = await stack.act(name, "approve", "Running")
    assert running["deployment_runtime_status_details"] is None
    await changed.out.until(2)
    assert await changed.outputs() == [(1, "v1"), (2, "v2")]


async def test_a_forced_stop_ends_the_wait_for_approval(changed: Changed) -> None:
    stack, name = changed.stack, changed.name
    await stack.act(name, "start", "AwaitingApproval")
    stopped = await stack.act(name, "stop", "Stopped", force="true")
    assert stopped["deployment_error"] is None
    assert await changed.outputs() == [(1, "v1")]


async def test_a_suspend_while_awaiting_approval_keeps_the_old_checkpoint(
    changed: Changed,
) -> None:
    stack, name = changed.stack, changed.name
    await stack.act(name, "start", "AwaitingApproval")
    stopped = await stack.act(name, "stop", "Stopped", force="false")
    assert stopped["deployment_error"] is None
    head = await asyncio.to_thread(stack.checkpoint_head, changed.pipeline_id)
    assert head is not None and head.config_version == 1
    # So the next start still has the change to approve.
    await stack.act(name, "start", "AwaitingApproval")


async def test_checkpoint_records_the_running_pipelines_offsets(stack: Stack) -> None:
    tag = new_tag()
    name = await stack.create_pipeline(document(tag, "v1"))
    inbound = f"test.rec.{tag}.in"
    running = await stack.act(name, "start", "Running")
    pipeline_id = uuid.UUID(running["id"])
    async with Outbound(stack.settings, f"test.rec.{tag}.out") as out:
        await stack.through(inbound, out, 1)
        checkpoint = await stack.action(name, "checkpoint")
        assert checkpoint.status_code == 200, checkpoint.text
        assert checkpoint.json()["checkpoint_sequence_number"] == 1

        async def taken() -> bool:
            head = await asyncio.to_thread(stack.checkpoint_head, pipeline_id)
            return head is not None and head.sequence_number == 1

        await eventually_async(taken, "checkpoint 1 recorded")
        recorded = await asyncio.to_thread(stack.checkpoint, pipeline_id)
        assert sum(recorded["echo"].values()) == 1  # message 1, in one of the partitions
        # The pipeline goes on consuming after its checkpoint.
        await stack.through(inbound, out, 2)
        assert (await stack.pipeline(name))["deployment_status"] == "Running"

        # A forced stop keeps that checkpoint: the next start processes message 2 again,
        # and message 1 (covered by it) never.
        await stack.act(name, "stop", "Stopped", force="true")
        await stack.act(name, "start", "Running")
        await stack.through(inbound, out, 3)
        assert sorted(p["n"] for p in await out.read()) == [1, 2, 2, 3]
    await stack.act(name, "stop", "Stopped", force="true")
