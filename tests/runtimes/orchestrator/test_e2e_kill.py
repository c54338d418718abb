"""An orchestrator process (`pipelines serve --role orchestrator`) SIGKILLed in the middle
of an execution, then started again: the execution resumes and completes (it is not
interrupted), and every message is counted once — in the ledger, in the stage runs and in
the message storage — though the killed process's last batch runs again.

The rest of the service (api, handler, relay, projector) runs in the test's process on
the same SQLite event store."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from services.adapters.message_store import open_message_store
from tests.runtimes.orchestrator.e2e_support import (
    Stack,
    killed_midway,
    module_stack,
    slow_enrich_document,
    topics_of,
)
from tests.runtimes.orchestrator.worker_support import read_keyed
from tests.runtimes.role_processes import role_processes

pytestmark = pytest.mark.broker

MESSAGES = 6
KILL_AFTER = 2  # enrich has consumed this many when the process is killed
ENRICH_DELAY_S = 0.5
ROUTES = ("validate", "enrich", "notify")


stack = module_stack("e2e-kill", orchestrators=0)


async def test_a_killed_orchestrator_restarted_completes_the_execution_counting_once(
    stack: Stack, tmp_path: Path
) -> None:
    document = slow_enrich_document(ENRICH_DELAY_S)
    topics = topics_of(document)
    with role_processes("orchestrator", tmp_path / "orchestrator.log") as processes:
        execution_id = await killed_midway(
            stack,
            processes,
            document,
            [f"K-{n}" for n in range(MESSAGES)],
            "Kill",
            lambda execution: stack.consumed(execution, "enrich") >= KILL_AFTER,
            "enrich to consume some messages",
        )
        second = processes.spawn(stack.settings)
        await stack.until_status(execution_id, "completed")
        assert processes.stop(second) == 0, processes.output()

    assert stack.ledger_counts(execution_id) == {r: (MESSAGES, MESSAGES, 0) for r in ROUTES}
    stages = stack.stages(execution_id)
    for route in ROUTES:
        stage = stages[route]
        assert (stage["status"], stage["messages_in"], stage["messages_out"]) == (
            "success",
            MESSAGES,
            MESSAGES,
        ), route
    with closing(open_message_store(stack.settings)) as storage:
        stored = {
            r: (storage.consumed(execution_id, r), storage.produced(execution_id, r))
            for r in ROUTES
        }
    for route, (consumed, produced) in stored.items():
        assert len({s.message.id for s in consumed}) == len(consumed) == MESSAGES, route
        assert len({s.message.id for s in produced}) == len(produced) == MESSAGES, route
    # The killed batch may have been published twice, as the same messages.
    bootstrap = stack.settings.kafka_bootstrap_servers
    assert bootstrap is not None
    done = await read_keyed(bootstrap, topics["done"], str(execution_id).encode(), MESSAGES)
    ids = {dict(r.headers)["ce_id"] for r in done}
    assert len(ids) == MESSAGES
