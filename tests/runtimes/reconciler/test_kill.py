"""A reconciler process (`pipelines serve --role reconciler`) SIGKILLed while a pipeline
is Running, and again while one is Provisioning; a reconciler started afterwards brings
the pipeline to its desired status, and no message published meanwhile is lost.

The rest of the service (api, handler, relay, projector) runs in the test's process on
the same SQLite event store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtimes.reconciler.support import Outbound, Stack, module_stack
from tests.runtimes.role_processes import RoleProcesses, role_processes

pytestmark = pytest.mark.broker

# The reconciler killed while Provisioning sweeps this slowly: a pipeline stays
# Provisioning for at least one whole sweep, long enough to see it and kill the process.
SLOW_SWEEP_MS = 4000


stack = module_stack("rec-kill", in_process=False, reconciler_provisioning_timeout_s=60)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[RoleProcesses]:
    with role_processes("reconciler", tmp_path / "reconciler.log") as found:
        yield found


async def test_a_killed_reconciler_restarted_brings_the_pipeline_to_its_desired_status(
    stack: Stack, processes: RoleProcesses
) -> None:
    name, inbound, outbound = await stack.echo_pipeline()
    slow = stack.settings.model_copy(update={"reconciler_sweep_ms": SLOW_SWEEP_MS})
    async with Outbound(stack.settings, outbound) as out:
        # Killed while Running.
        first = processes.spawn(stack.settings)
        running = await stack.act(name, "start", "Running")
        await stack.through(inbound, out, 1)
        processes.kill(first)
        await stack.publish(inbound, {"n": 2})  # nobody consumes it now
        assert (await stack.pipeline(name))["deployment_status"] == "Running"

        second = processes.spawn(stack.settings)
        await out.until(2)  # the same deployment goes on where it was
        found = await stack.pipeline(name)
        assert (found["deployment_status"], found["deployment_id"]) == (
            "Running",
            running["deployment_id"],
        )
        # Stopped with a checkpoint after message 2.
        await stack.act(name, "stop", "Stopped", force="false")
        assert processes.stop(second) == 0, processes.output()

        # Killed while Provisioning.
        third = processes.spawn(slow)
        await stack.act(name, "start", "Provisioning")
        processes.kill(third)
        await stack.publish(inbound, {"n": 3})
        assert (await stack.pipeline(name))["deployment_status"] == "Provisioning"

        fourth = processes.spawn(stack.settings)
        again = await stack.until_status(name, "Running")
        assert again["deployment_desired_status"] == "Running"
        assert again["deployment_error"] is None
        await out.until(3)  # from the checkpoint: message 3 is not lost
        await stack.through(inbound, out, 4)
        # Message 2 is covered by the checkpoint and 3 by none: each came out once. (The
        # first kill may have come between message 1's output and its commit, so 1 may
        # have come out twice.)
        seen = [p["n"] for p in await out.read()]
        assert set(seen) == {1, 2, 3, 4}
        assert [seen.count(n) for n in (2, 3, 4)] == [1, 1, 1]
        await stack.act(name, "stop", "Stopped", force="true")
        assert processes.stop(fourth) == 0, processes.output()
