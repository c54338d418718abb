"""The run timeout end to end: `PIPELINES_EXECUTION_TIMEOUT_S` reaches the command handler
(every new run's deadline), and the orchestrator's sweep times out an execution past it
without any event to wake it (docs/architecture.md: time-based work is swept). Its init route delays
longer than the timeout, so whether that route got the message before or after the
deadline, its outputs are dropped and no later route ever sees the execution."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from projections.store import ReadStore
from services.adapters.message_store import open_message_store
from services.adapters.stores import open_command_store
from services.entrypoints.roles import handler_decider
from services.runtimes.orchestrator.route_batch import Fate
from services.settings import Settings
from tests.runtimes.orchestrator.e2e_support import (
    Stack,
    module_stack,
    orders_document,
)
from tests.waiting import eventually

TIMEOUT_S = 2.0
# Far past the timeout: the sweep decides `time_out` well before the delay ends.
DELAY_S = 5.0


def test_the_timeout_setting_defaults_to_21_days_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PIPELINES_EXECUTION_TIMEOUT_S", raising=False)
    assert Settings().execution_timeout_s == timedelta(days=21).total_seconds()
    monkeypatch.setenv("PIPELINES_EXECUTION_TIMEOUT_S", "90")
    assert Settings().execution_timeout_s == 90


@pytest.mark.parametrize("raw", ["0", "-5", "soon"])
def test_a_timeout_that_is_not_positive_is_refused(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("PIPELINES_EXECUTION_TIMEOUT_S", raw)
    with pytest.raises(ValueError, match="execution_timeout_s"):
        Settings()


def test_the_handlers_decider_gives_new_runs_the_setting(tmp_path: Path) -> None:
    settings = Settings(execution_timeout_s=42, event_store_url=f"sqlite:///{tmp_path}/e.db")
    store = open_command_store(settings.event_store_url)
    try:
        decider = handler_decider(settings, store, gate=_AdmitAll())
        assert decider.run_timeout == timedelta(seconds=42)
    finally:
        store.close()


class _AdmitAll:
    def admit(self, execution_id: UUID) -> None:
        return None


stack = module_stack("e2e-timeout", execution_timeout_s=TIMEOUT_S)


@pytest.mark.broker
async def test_the_sweep_times_out_an_execution_and_skips_its_later_messages(
    stack: Stack,
) -> None:
    slow = {"adapters": [{"type": "delay", "config": {"seconds": DELAY_S}}]}
    config_id = await stack.create_config(orders_document(validate=slow), name="slow-orders")
    execution_id = await stack.started(config_id)

    # Seed 004 shows a timed-out execution as failed; the canonical (seed 003) word is timeout.
    ended = await stack.until_status(execution_id, "failed")
    assert ended["completed_at"] is not None
    with ReadStore(stack.settings.event_store_url) as store:
        row = store.get_execution(str(execution_id))
    assert row is not None
    assert (row["status"], row["timeout_s"]) == ("timeout", TIMEOUT_S)
    assert row["ended_at"] >= row["deadline"]

    # `validate` had the init message in its delay, or sees it only now: either way it is
    # skipped, nothing is published, and the later routes never hear of the execution.
    await eventually(
        lambda: stack.fates(config_id, "validate").get(Fate.FINISHED, 0) == 1,
        "validate to skip the timed-out execution's message",
    )
    assert stack.fates(config_id, "validate").get(Fate.PROCESSED, 0) == 0
    assert set(stack.ledger_counts(execution_id)) <= {"validate"}
    with closing(open_message_store(stack.settings)) as storage:
        for route in ("validate", "enrich", "notify"):
            assert storage.produced(execution_id, route) == []
        assert storage.consumed(execution_id, "enrich") == []

    # The stage runs show where it stopped: nothing ran to success.
    response = await stack.client.get(f"/api/v1/executions/{execution_id}/stages")
    assert response.status_code == 200, response.text
    stages = response.json()
    assert [s["stage"] for s in stages] == ["validate", "enrich", "notify"]
    assert all(s["messages_out"] == 0 and s["status"] != "success" for s in stages)
