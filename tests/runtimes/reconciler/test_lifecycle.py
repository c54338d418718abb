"""Pipelines started, paused, resumed and stopped by a real reconciler, end to end: HTTP
in front, the command handler, relay and projector behind, the route's messages on the
session's broker (one stack for the module)."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from aiokafka import TopicPartition

from services.runtimes.reconciler.checkpoints import Checkpoints, Head
from tests.expected_bodies import STOPPING_BODY
from tests.runtimes.reconciler.support import (
    Outbound,
    Stack,
    module_stack,
    new_tag,
    route_document,
)
from tests.waiting import eventually_async

stack = module_stack("rec")


async def test_start_pause_resume_stop(stack: Stack) -> None:
    name, inbound, outbound = await stack.echo_pipeline()

    running = await stack.act(name, "start", "Running")
    assert running["deployment_desired_status"] == "Running"
    assert running["deployment_id"] is not None
    assert running["deployment_error"] is None
    async with Outbound(stack.settings, outbound) as out:
        assert await stack.through(inbound, out, 1) == {"n": 1, "seen": "yes"}

        await stack.act(name, "pause", "Paused")
        await stack.publish(inbound, {"n": 2})
        # Two whole sweeps with the message on the broker: the paused route took nothing.
        await stack.driver.sweeps(2)
        assert [p["n"] for p in await out.read()] == [1]
        (worker,) = stack.reconciler.deployments[uuid.UUID(running["id"])].workers
        assert worker.stats.consumed == 1

        await stack.act(name, "resume", "Running")
        assert await out.until(2) == {"n": 2, "seen": "yes"}

    stop = await stack.action(name, "stop", force="true")
    assert stop.status_code == 202
    stopped = await stack.until_status(name, "Stopped")
    assert stopped["deployment_id"] is None
    assert stopped["deployment_error"] is None
    assert stopped["deployment_desired_status"] == "Stopped"
    await stack.driver.sweeps(2)  # the sweep after Stopped lets the deployment go
    assert uuid.UUID(running["id"]) not in stack.reconciler.deployments


@pytest.mark.parametrize(("initial", "status"), [("paused", "Paused"), ("standby", "Standby")])
async def test_start_with_an_initial_status_provisions_without_consuming(
    stack: Stack, initial: str, status: str
) -> None:
    name, inbound, outbound = await stack.echo_pipeline()
    found = await stack.act(name, "start", status, initial=initial)
    assert found["deployment_desired_status"] == status
    deployment = stack.reconciler.deployments[uuid.UUID(found["id"])]
    assert deployment.ready
    assert [w.consuming for w in deployment.workers] == [False]
    if initial == "paused":
        async with Outbound(stack.settings, outbound) as out:
            await stack.publish(inbound, {"n": 7})
            await stack.driver.sweeps(2)
            assert await out.read() == []
            await stack.act(name, "resume", "Running")
            assert await out.until(7) == {"n": 7, "seen": "yes"}
    await stack.act(name, "stop", "Stopped", force="true")


async def test_start_while_stopping_is_the_seed_illegal_pipeline_action(stack: Stack) -> None:
    name = await stack.create_pipeline(route_document(new_tag()))
    await stack.act(name, "start", "Running")
    async with stack.driver.held():
        assert (await stack.action(name, "stop", force="true")).status_code == 202
        # One sweep (the stop is in the event store it reads): the workers stop and
        # begin_stopping is sent; the next sweep would finish the stop.
        await stack.driver.sweep()
        await stack.until_status(name, "Stopping")
        response = await stack.action(name, "start")
        assert response.status_code == 400
        assert response.json() == STOPPING_BODY
    await stack.until_status(name, "Stopped")
    # Stopped, it starts again under a new deployment.
    await stack.act(name, "start", "Running")
    await stack.act(name, "stop", "Stopped", force="true")


async def test_a_provisioning_timeout_stops_the_pipeline_with_its_error(stack: Stack) -> None:
    name = await stack.create_pipeline(route_document(new_tag()))
    stack.reconciler.provisioning_timeout_s = 0  # nothing can be assigned that fast
    try:
        assert (await stack.action(name, "start")).status_code == 202
        found = await stack.until_stopped_with_error(name)
    finally:
        stack.reconciler.provisioning_timeout_s = stack.settings.reconciler_provisioning_timeout_s
    assert found["deployment_error"]["error_code"] == "AutomatonProvisioningTimeout"
    assert found["deployment_error"]["details"] == {"timeout": {"secs": 0, "nanos": 0}}
    assert found["deployment_desired_status"] == "Stopped"
    # The error is dismissed by the next start, which now provisions in time.
    running = await stack.act(name, "start", "Running")
    assert running["deployment_error"] is None
    await stack.act(name, "stop", "Stopped", force="true")


@pytest.mark.parametrize(
    ("bad", "message", "details"),
    [
        (
            orjson.dumps({"n": 2, "boom": True}),
            "boom",
            {"adapter": "fail", "step": 0, "attempts": 1},
        ),
        (b"{not json", "a message is not JSON", {}),
        (b"[1, 2]", "a message is not a JSON object", {}),
    ],
    ids=["adapter-failure", "not-json", "not-an-object"],
)
async def test_a_route_that_fails_stops_the_pipeline_with_its_error(
    stack: Stack, bad: bytes, message: str, details: dict[str, object]
) -> None:
    fail = {
        "type": "fail",
        "condition": {"field": "payload.boom", "operator": "equals", "value": True},
        "config": {"message": "boom"},
    }
    name, inbound, outbound = await stack.echo_pipeline(adapters=[fail, {"type": "pass_through"}])
    await stack.act(name, "start", "Running")
    async with Outbound(stack.settings, outbound) as out:
        await stack.through(inbound, out, 1)
        await stack.producer.send_and_wait(inbound, bad, key=b"k", partition=0)
        found = await stack.until_status(name, "Stopped")
    error = found["deployment_error"]
    assert error["error_code"] == "RouteFailed"
    assert error["message"].startswith(f"Route 'echo' failed: {message}")
    assert error["details"]["route"] == "echo"
    assert error["details"]["topic"] == inbound
    assert error["details"]["partition"] == 0
    assert {k: error["details"][k] for k in details} == details
    assert found["deployment_desired_status"] == "Stopped"


async def test_a_restarted_reconciler_takes_over_a_running_pipeline(stack: Stack) -> None:
    name, inbound, outbound = await stack.echo_pipeline()
    running = await stack.act(name, "start", "Running")
    await stack.stop_reconciler()
    # Published while no reconciler runs: the deployment's committed offsets keep it.
    await stack.publish(inbound, {"n": 3})
    await stack.start_reconciler()
    async with Outbound(stack.settings, outbound) as out:
        assert await out.until(3) == {"n": 3, "seen": "yes"}
    found = await stack.pipeline(name)
    assert (found["deployment_status"], found["deployment_id"]) == (
        "Running",
        running["deployment_id"],
    )
    await stack.act(name, "stop", "Stopped", force="true")


async def test_stop_checkpoints_and_a_later_start_resumes_from_it(stack: Stack) -> None:
    name, inbound, outbound = await stack.echo_pipeline()
    running = await stack.act(name, "start", "Running")
    pipeline_id = uuid.UUID(running["id"])
    async with Outbound(stack.settings, outbound) as out:
        await stack.through(inbound, out, 1)

        stop = await stack.action(name, "stop", force="false")
        assert (stop.status_code, stop.json()) == (202, "Pipeline is suspending")
        stopped = await stack.until_status(name, "Stopped")
        assert stopped["deployment_error"] is None
        checkpoint = await asyncio.to_thread(stack.checkpoint, pipeline_id)
        assert sum(checkpoint["echo"].values()) == 1  # message 1, in one of the partitions

        # Published while stopped: before the topic's end, after the checkpoint.
        await stack.publish(inbound, {"n": 2})
        again = await stack.act(name, "start", "Running")
        assert again["deployment_id"] != running["deployment_id"]
        await out.until(2)
        await stack.through(inbound, out, 3)
        # Nothing the checkpoint covers came out again.
        assert sorted(p["n"] for p in await out.read()) == [1, 2, 3]
    await stack.act(name, "stop", "Stopped", force="true")


async def test_a_forced_stop_keeps_the_last_checkpoint(stack: Stack) -> None:
    name, inbound, outbound = await stack.echo_pipeline()
    await stack.act(name, "start", "Running")
    async with Outbound(stack.settings, outbound) as out:
        await stack.through(inbound, out, 1)
        await stack.act(name, "stop", "Stopped", force="false")
        await stack.act(name, "start", "Running")
        await stack.through(inbound, out, 2)
        # Forced: no checkpoint, so the next start goes back to the one before message 2.
        await stack.act(name, "stop", "Stopped", force="true")
        await stack.act(name, "start", "Running")
        await stack.through(inbound, out, 3)
        assert sorted(p["n"] for p in await out.read()) == [1, 2, 2, 3]
    await stack.act(name, "stop", "Stopped", force="true")


async def test_a_config_the_reconciler_cannot_run_stops_the_pipeline(stack: Stack) -> None:
    # Config validation does not know the service's topic prefix; the reconciler does.
    commands = stack.settings.topics.commands
    name = await stack.create_pipeline(route_document(new_tag(), inbound={"topic": commands}))
    assert (await stack.action(name, "start")).status_code == 202
    found = await stack.until_stopped_with_error(name)
    error = found["deployment_error"]
    assert error["error_code"] == "PipelineConfigUnrunnable"
    assert commands in error["message"]
    assert set(error["details"]) == {"config_id"}


async def test_a_forced_stop_while_provisioning_stops_the_workers(stack: Stack) -> None:
    name = await stack.create_pipeline(route_document(new_tag()))
    async with stack.driver.held():
        # Only a validated program is provisioned: one sweep then sends begin_provisioning.
        await stack.until(name, lambda p: p["program_status"] == "Success", "validated")
        assert (await stack.action(name, "start")).status_code == 202
        await stack.driver.sweep()
        provisioning = await stack.until_status(name, "Provisioning")
        pipeline_id = uuid.UUID(provisioning["id"])
        # This sweep starts the workers; it decided on no workers, so it cannot send
        # `provisioned` yet: the pipeline is held in Provisioning with its workers running.
        await stack.driver.sweep()
        deployment = stack.reconciler.deployments[pipeline_id]
        assert str(deployment.deployment_id) == provisioning["deployment_id"]
        assert deployment.tasks and not any(t.done() for t in deployment.tasks)
        assert (await stack.pipeline(name))["deployment_status"] == "Provisioning"
        assert (await stack.action(name, "stop", force="true")).status_code == 202
    stopped = await stack.until_status(name, "Stopped")
    assert stopped["deployment_error"] is None
    assert stopped["deployment_desired_status"] == "Stopped"
    await stack.driver.sweeps(2)  # the sweep after Stopped lets the deployment go
    assert pipeline_id not in stack.reconciler.deployments
    assert all(t.done() for t in deployment.tasks)  # no consumer left running
    assert deployment.failure() is None


async def test_after_a_route_failure_dismiss_error_and_start_run_it_again(stack: Stack) -> None:
    name, inbound, outbound = await stack.echo_pipeline()
    await stack.act(name, "start", "Running")
    async with Outbound(stack.settings, outbound) as out:
        await stack.producer.send_and_wait(inbound, b"{not json", key=b"k", partition=0)
        failed = await stack.until_status(name, "Stopped")
        assert failed["deployment_error"]["error_code"] == "RouteFailed"

        dismissed = await stack.action(name, "dismiss_error")
        assert dismissed.status_code == 200, dismissed.text
        found = await stack.until(name, lambda p: p["deployment_error"] is None, "no error")
        assert found["deployment_status"] == "Stopped"

        # No checkpoint was taken: the new deployment starts at the topic's end, past the
        # bad message, and messages flow again.
        running = await stack.act(name, "start", "Running", dismiss_error="false")
        assert running["deployment_error"] is None
        assert await stack.through(inbound, out, 1) == {"n": 1, "seen": "yes"}
    await stack.act(name, "stop", "Stopped", force="true")


# Longer than the whole start below may take: only wake-ups can bring it to Running.
LONG_SWEEP_S = 60.0


async def test_events_wake_the_reconciler_before_its_next_tick(stack: Stack) -> None:
    name, inbound, outbound = await stack.echo_pipeline()
    await stack.until(name, lambda p: p["program_status"] == "Success", "validated")
    stack.reconciler.sweep_s = LONG_SWEEP_S
    try:
        await stack.driver.sweeps(1)  # from now on the ticks are LONG_SWEEP_S apart
        assert (await stack.action(name, "start")).status_code == 202
        # Running takes four sweeps (begin_provisioning, the workers started, provisioned,
        # runtime Running): each is woken by the event of the step before it, or by the
        # workers becoming ready.
        sweeps = stack.reconciler.sweeps
        async with Outbound(stack.settings, outbound) as out:
            await eventually_async(
                lambda: _is_running(stack, name), "Running", timeout_s=LONG_SWEEP_S * 0.75
            )
            assert stack.reconciler.sweeps >= sweeps + 4
            assert await stack.through(inbound, out, 1) == {"n": 1, "seen": "yes"}
        assert (await stack.action(name, "stop", force="true")).status_code == 202
        await eventually_async(
            lambda: _is_stopped(stack, name), "Stopped", timeout_s=LONG_SWEEP_S * 0.75
        )
    finally:
        stack.reconciler.sweep_s = stack.settings.reconciler_sweep_ms / 1000
        stack.reconciler.wake.set()  # the wait under way ends now, not in LONG_SWEEP_S


async def _is_running(stack: Stack, name: str) -> bool:
    return (await stack.pipeline(name))["deployment_status"] == "Running"


async def _is_stopped(stack: Stack, name: str) -> bool:
    return (await stack.pipeline(name))["deployment_status"] == "Stopped"


async def test_a_deleted_pipelines_checkpoint_is_deleted(stack: Stack) -> None:
    name = await stack.create_pipeline(route_document(new_tag()))
    created = await stack.until(name, lambda p: p["program_status"] == "Success", "validated")
    pipeline_id = uuid.UUID(created["id"])
    # Written here for a pipeline that never ran: this checks the delete path alone (a
    # pipeline that ran is cleared first, which deletes its checkpoint: tested below).
    tp = TopicPartition("test.rec.any", 0)
    checkpoints = Checkpoints(stack.settings.event_store_url)
    try:
        head = Head(uuid.UUID(created["config_id"]), 1)
        await asyncio.to_thread(checkpoints.record, pipeline_id, {"echo": {tp: 5}}, head)
    finally:
        checkpoints.close()
    assert await asyncio.to_thread(stack.checkpoint, pipeline_id) == {"echo": {tp: 5}}

    deleted = await stack.client.delete(f"/v0/pipelines/{name}")
    assert deleted.status_code == 200, deleted.text

    async def forgotten() -> bool:
        found = await asyncio.to_thread(stack.checkpoint, pipeline_id)
        return found == {} and await asyncio.to_thread(stack.checkpoint_head, pipeline_id) is None

    # The Deleted event wakes the sweep, which finds the pipeline gone.
    await eventually_async(forgotten, "the checkpoint deleted")


async def test_clear_delete_and_recreate_under_the_same_name(stack: Stack) -> None:
    tag = new_tag()
    name, config_id = await stack.create_pipeline_and_config(route_document(tag))
    inbound, outbound = f"test.rec.{tag}.in", f"test.rec.{tag}.out"
    first = await stack.act(name, "start", "Running")
    first_id = uuid.UUID(first["id"])
    async with Outbound(stack.settings, outbound) as out:
        await stack.through(inbound, out, 1)
    await stack.act(name, "stop", "Stopped", force="false")
    assert await asyncio.to_thread(stack.checkpoint, first_id) != {}

    # Storage that was used must be cleared before a delete; clearing deletes the checkpoint.
    refused = await stack.client.delete(f"/v0/pipelines/{name}")
    assert refused.status_code == 400, refused.text
    assert refused.json()["error_code"] == "DeleteRestrictedToClearedStorage"
    assert (await stack.action(name, "clear")).status_code == 202
    await stack.until(name, lambda p: p["storage_status"] == "Cleared", "storage cleared")
    assert await asyncio.to_thread(stack.checkpoint, first_id) == {}
    assert await asyncio.to_thread(stack.checkpoint_head, first_id) is None
    deleted = await stack.client.delete(f"/v0/pipelines/{name}")
    assert deleted.status_code == 200, deleted.text

    again = await stack.client.post("/v0/pipelines", json={"name": name, "config_id": config_id})
    assert again.status_code == 201, again.text
    second_id = uuid.UUID(again.json()["id"])
    assert second_id != first_id
    assert (await stack.action(name, "start")).status_code == 202
    second = await stack.until(
        name, lambda p: p["id"] == str(second_id) and p["deployment_status"] == "Running", "Running"
    )
    assert second["deployment_id"] not in (None, first["deployment_id"])
    assert first_id not in stack.reconciler.deployments
    async with Outbound(stack.settings, outbound) as out:
        assert await stack.through(inbound, out, 2) == {"n": 2, "seen": "yes"}
    await stack.act(name, "stop", "Stopped", force="true")
