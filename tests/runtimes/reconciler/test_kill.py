"""A reconciler process (`pipelines serve --role reconciler`) SIGKILLed while a pipeline
is Running, and again while one is Provisioning; a reconciler started afterwards brings
the pipeline to its desired status, and no message published meanwhile is lost.

The rest of the service (api, handler, relay, projector) runs in the test's process on
the same SQLite event store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.settings import Settings
from tests.runtimes.reconciler.support import Outbound, Stack, reconciler_stack, route_document

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[3]
# The reconciler killed while Provisioning sweeps this slowly: a pipeline stays
# Provisioning for at least one whole sweep, long enough to see it and kill the process.
SLOW_SWEEP_MS = 4000


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("rec-kill")
    async with reconciler_stack(
        kafka_bootstrap, tmp, in_process=False, reconciler_provisioning_timeout_s=60
    ) as found:
        yield found


class Processes:
    """Reconciler processes, each stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self, settings: Settings) -> subprocess.Popen[bytes]:
        """`pipelines serve --role reconciler` with `settings` in its environment."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
        for name, value in settings.model_dump(exclude_none=True).items():
            env[f"PIPELINES_{name.upper()}"] = str(value)
        with self.log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.entrypoints.cli", "serve", "--role", "reconciler"],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        assert process.poll() is None, self.log.read_text()
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        return process.returncode


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    found = Processes(tmp_path / "reconciler.log")
    try:
        yield found
    finally:
        for process in found.started:
            found.stop(process)


async def test_a_killed_reconciler_restarted_brings_the_pipeline_to_its_desired_status(
    stack: Stack, processes: Processes
) -> None:
    tag = uuid.uuid4().hex[:8]
    name = await stack.create_pipeline(route_document(tag))
    inbound = f"test.rec.{tag}.in"
    slow = stack.settings.model_copy(update={"reconciler_sweep_ms": SLOW_SWEEP_MS})
    async with Outbound(stack.settings, f"test.rec.{tag}.out") as out:
        # Killed while Running.
        first = processes.spawn(stack.settings)
        assert (await stack.action(name, "start")).status_code == 202
        running = await stack.until_status(name, "Running")
        await stack.publish(inbound, {"n": 1})
        await out.until(1)
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
        assert (await stack.action(name, "stop", force="false")).status_code == 202
        await stack.until_status(name, "Stopped")  # with a checkpoint after message 2
        assert processes.stop(second) == 0, processes.log.read_text()

        # Killed while Provisioning.
        third = processes.spawn(slow)
        assert (await stack.action(name, "start")).status_code == 202
        await stack.until_status(name, "Provisioning")
        processes.kill(third)
        await stack.publish(inbound, {"n": 3})
        assert (await stack.pipeline(name))["deployment_status"] == "Provisioning"

        fourth = processes.spawn(stack.settings)
        again = await stack.until_status(name, "Running")
        assert again["deployment_desired_status"] == "Running"
        assert again["deployment_error"] is None
        await out.until(3)  # from the checkpoint: message 3 is not lost
        await stack.publish(inbound, {"n": 4})
        await out.until(4)
        # Message 2 is covered by the checkpoint and 3 by none: each came out once. (The
        # first kill may have come between message 1's output and its commit, so 1 may
        # have come out twice.)
        seen = [p["n"] for p in await out.read()]
        assert set(seen) == {1, 2, 3, 4}
        assert [seen.count(n) for n in (2, 3, 4)] == [1, 1, 1]
        assert (await stack.action(name, "stop", force="true")).status_code == 202
        await stack.until_status(name, "Stopped")
        assert processes.stop(fourth) == 0, processes.log.read_text()
