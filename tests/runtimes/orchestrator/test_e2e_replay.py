"""Replay end to end, in one process: the README example (validate -> enrich -> notify) run
over real HTTP, then replayed through `POST /api/v1/executions/{id}/replay` with the
command handler, relay (and its replay publisher), projector and an orchestrator on the
real broker and SQLite. A storage replay from every stage to its own route ends
`completed` with the parent's final output; a replay of a replay keeps the root; a dry run
changes nothing; one replay sent three times with one key is one child; manual replays
publish the given payloads; every refusal is a structured error."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest
import yaml

from projections.store import ReadStore
from services.runtimes.orchestrator.role import Orchestrator
from services.runtimes.replay_publisher import ReplayProgress
from tests.runtimes.orchestrator.e2e_support import (
    EXECUTIONS,
    YAML,
    Stack,
    module_stack,
    orders_document,
    topics_of,
)
from tests.runtimes.orchestrator.worker_support import read_keyed

pytestmark = pytest.mark.broker

LIMIT = 3  # PIPELINES_REPLAY_MAX_MESSAGES of this module's stack

stack = module_stack("replay", replay_max_messages=LIMIT, replay_batch_max=2)


@pytest.fixture(scope="module")
async def parent(stack: Stack) -> tuple[UUID, UUID, dict[str, str]]:
    """(config id, a completed execution of it, its topics), tagged `replay-parent`."""
    document = orders_document()
    config_id = await stack.create_config(document)
    execution_id = await stack.started(config_id, tag="replay-parent")
    await stack.until_status(execution_id, "completed")
    return config_id, execution_id, topics_of(document)


async def _replay(
    stack: Stack, parent: UUID | str, key: str | None = None, **body: Any
) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return await stack.client.post(f"{EXECUTIONS}/{parent}/replay", json=body, headers=headers)


async def _child(stack: Stack, parent: UUID | str, **body: Any) -> UUID:
    response = await _replay(stack, parent, **body)
    assert response.status_code == 200, response.text
    return UUID(response.json()["id"])


async def _done(stack: Stack, topics: dict[str, str], execution_id: UUID) -> list[Any]:
    bootstrap = stack.settings.kafka_bootstrap_servers
    assert bootstrap is not None
    records = await read_keyed(bootstrap, topics["done"], str(execution_id).encode(), 1)
    return [orjson.loads(r.value) for r in records]


@pytest.mark.parametrize("stage", ["validate", "enrich", "notify"])
async def test_a_storage_replay_from_each_stage_ends_with_the_parents_output(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]], stage: str
) -> None:
    config_id, parent_id, topics = parent
    response = await _replay(
        stack, parent_id, replay_source="storage", from_stage=stage, to_route=stage
    )
    assert response.status_code == 200, response.text
    child = response.json()
    assert child["parent_execution_id"] == str(parent_id)
    assert child["replay_source"] == "storage"
    assert child["config_id"] == str(config_id)
    child_id = UUID(child["id"])

    await stack.until_status(child_id, "completed")
    assert await _done(stack, topics, child_id) == await _done(stack, topics, parent_id)
    counts = stack.stage_counts(child_id)
    # The routes before the stage got nothing; the stage and those after handled one.
    order = ["validate", "enrich", "notify"]
    for route in order:
        handled = order.index(route) >= order.index(stage)
        assert counts[route][1] == (1 if handled else 0), counts


async def test_a_replay_of_a_replay_keeps_the_root(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, parent_id, topics = parent
    first = await _child(stack, parent_id, from_stage="enrich")
    await stack.until_status(first, "completed")
    second = await _child(stack, first, from_stage="notify")
    done = await stack.until_status(second, "completed")
    assert done["parent_execution_id"] == str(first)
    assert await _done(stack, topics, second) == await _done(stack, topics, parent_id)
    with ReplayProgress(stack.settings.event_store_url) as progress:
        assert progress.get(second) == (True, 1, True)


async def test_the_parent_is_named_by_its_tag(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, parent_id, _ = parent
    child = await _child(stack, "replay-parent", from_stage="notify")
    done = await stack.until_status(child, "completed")
    assert done["parent_execution_id"] == str(parent_id)


async def test_a_dry_run_answers_the_plan_and_changes_nothing(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]]
) -> None:
    config_id, parent_id, topics = parent
    before = (await stack.client.get(EXECUTIONS, params={"config_id": str(config_id)})).json()
    response = await _replay(stack, parent_id, from_stage="enrich", to_route="notify", dry_run=True)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["dry_run"] is True
    assert plan["message_count"] == 1
    assert plan["to_route"] == "notify"
    assert plan["to_topic"] == topics["notify"]
    assert plan["from"] == {"execution_id": str(parent_id), "route": "enrich", "direction": "in"}
    assert plan["messages"][0]["payload"]["order_id"] == "A-1"
    after = (await stack.client.get(EXECUTIONS, params={"config_id": str(config_id)})).json()
    assert after["total"] == before["total"]


async def test_one_replay_sent_three_times_with_one_key_is_one_child(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, parent_id, _ = parent
    key = "replay-once-0001"
    answers = [await _replay(stack, parent_id, key, from_stage="notify") for _ in range(3)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["id"] for a in answers}) == 1
    child = UUID(answers[0].json()["id"])
    await stack.until_status(child, "completed")


async def test_a_manual_replay_publishes_the_given_payloads(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, parent_id, topics = parent
    given = {"order_id": "M-7", "amount": 5, "summary": "by hand"}
    child = await _child(
        stack, parent_id, replay_source="manual", to_route="notify", messages=[given]
    )
    await stack.until_status(child, "completed")
    assert await _done(stack, topics, child) == [given]


async def test_a_replay_larger_than_the_limit_needs_allow_large(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, parent_id, topics = parent
    payloads = [{"order_id": f"L-{i}", "amount": i + 1, "customer": "C"} for i in range(LIMIT + 1)]
    refused = await _replay(
        stack, parent_id, replay_source="manual", to_route="validate", messages=payloads
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error_code"] == "ReplayTooLarge"
    child = await _child(
        stack,
        parent_id,
        replay_source="manual",
        to_route="validate",
        messages=payloads,
        allow_large=True,
    )
    await stack.until_status(child, "completed")
    bootstrap = stack.settings.kafka_bootstrap_servers
    assert bootstrap is not None
    records = await read_keyed(bootstrap, topics["done"], str(child).encode(), len(payloads))
    outputs = [orjson.loads(r.value) for r in records]
    assert sorted(o["order_id"] for o in outputs) == [p["order_id"] for p in payloads]
    with ReplayProgress(stack.settings.event_store_url) as progress:
        assert progress.get(child) == (True, len(payloads), True)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"from_stage": "nope"}, 400, "InvalidReplay"),
        ({"from_stage": "enrich", "to_route": "nope"}, 400, "InvalidReplay"),
        ({"from_stage": "enrich/9"}, 400, "InvalidReplay"),
        ({}, 400, "InvalidReplay"),  # storage needs from_stage
        ({"replay_source": "manual", "to_route": "notify"}, 400, "InvalidReplay"),
        ({"replay_source": "manual", "messages": [{"a": 1}]}, 400, "InvalidReplay"),
        (
            {"from_stage": "notify", "direction": "produced", "only_failed": True},
            400,
            "InvalidReplay",
        ),
        ({"from_stage": "validate", "only_failed": True}, 404, "NoStoredMessages"),
        ({"from_stage": "notify", "config_version": 9}, 404, "UnknownConfigVersion"),
        (
            {"replay_source": "manual", "from_path": "not-an-id/x/consumed", "to_route": "notify"},
            400,
            "InvalidReplay",
        ),
    ],
)
async def test_a_bad_replay_is_a_structured_error(
    stack: Stack,
    parent: tuple[UUID, UUID, dict[str, str]],
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    _, parent_id, _ = parent
    response = await _replay(stack, parent_id, **body)
    assert response.status_code == status, response.text
    found = response.json()
    assert found["error_code"] == code
    assert found["detail"]


async def test_an_unknown_parent_is_404(stack: Stack) -> None:
    for parent in ("0190a2b3-0000-7000-8000-000000000000", "no-such-tag"):
        response = await _replay(stack, parent, from_stage="enrich")
        assert response.status_code == 404, response.text
        assert response.json()["error_code"] == "UnknownExecution"


async def test_a_manual_replay_from_a_stored_path(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, parent_id, topics = parent
    child = await _child(
        stack,
        parent_id,
        replay_source="manual",
        from_path=f"{parent_id}/notify/consumed",
        to_route="notify",
    )
    await stack.until_status(child, "completed")
    assert await _done(stack, topics, child) == await _done(stack, topics, parent_id)


async def test_executions_older_than_the_broker_are_interrupted_with_a_reason(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]]
) -> None:
    """What `pipelines dev` does after restarting its empty embedded broker: an execution
    waiting for messages that went with the old broker ends `interrupted`, not hanging."""
    config_id, _, _ = parent
    waiting = await stack.started(config_id, skip_init_message=True)  # never gets a message
    restarted = stack.settings.model_copy(
        update={"orchestrator_interrupt_before": datetime.now(UTC)}
    )
    orchestrator = Orchestrator(restarted)
    stop = asyncio.Event()
    task = asyncio.create_task(orchestrator.run(stop))
    try:
        await stack.until_status(waiting, "interrupted")
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    with ReadStore(stack.settings.event_store_url) as store:
        history = store.get_execution(str(waiting))
    assert history is not None and history["status"] == "interrupted"


def _failing_enrich() -> tuple[str, str, dict[str, str]]:
    """(a config whose enrich route dead-letters everything, the same config fixed, topics)."""
    document = orders_document(
        enrich={
            "adapters": [{"type": "fail", "config": {"message": "no stock"}}],
            "error_handling": {"max_retries": 0, "retry_delay_seconds": 0.05},
        }
    )
    topics = topics_of(document)
    broken = yaml.safe_load(document)
    broken["routes"]["enrich"]["error_handling"]["dead_letter_topic"] = topics["dead_letters"]
    fixed = yaml.safe_load(orders_document())
    for route, spec in fixed["routes"].items():  # the broken config's topics, fixed adapters
        spec["inbound"] = broken["routes"][route]["inbound"]
        spec["outbound"] = broken["routes"][route]["outbound"]
        spec["error_handling"]["dead_letter_topic"] = topics["dead_letters"]
    return yaml.safe_dump(broken), yaml.safe_dump(fixed), topics


async def test_lineage_resumes_a_failed_execution_on_a_fixed_config_version(
    stack: Stack,
) -> None:
    broken, fixed, topics = _failing_enrich()
    config_id = await stack.create_config(broken, name="resumable")
    parent_id = await stack.started(config_id)
    await stack.until_status(parent_id, "failed")
    updated = await stack.client.put(f"/api/v1/configs/{config_id}", content=fixed, headers=YAML)
    assert updated.status_code == 200, updated.text

    plan = await _replay(stack, parent_id, replay_source="lineage", config_version=2, dry_run=True)
    assert plan.status_code == 200, plan.text
    assert plan.json()["routes"] == {"enrich": 1}  # only what had not finished

    child = await _child(stack, parent_id, replay_source="lineage", config_version=2)
    done = await stack.until_status(child, "completed")
    assert done["replay_source"] == "lineage"
    counts = stack.stage_counts(child)
    assert counts["validate"][1] == 0  # what completed is not repeated
    assert counts["enrich"][1] == 1 and counts["notify"][1] == 1
    (output,) = await _done(stack, topics, child)
    assert output["order_id"] == "A-1"
    # The parent keeps its own ending.
    assert (await stack.execution(parent_id))["status"] == "failed"


async def test_lineage_of_a_running_execution_is_refused(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]]
) -> None:
    config_id, _, _ = parent
    running = await stack.started(config_id, skip_init_message=True)
    refused = await _replay(stack, running, replay_source="lineage")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error_code"] == "ExecutionStillRunning"
    cancelled = await stack.client.post(f"{EXECUTIONS}/{running}/cancel")
    assert cancelled.status_code == 200
    nothing = await _replay(stack, running, replay_source="lineage")
    assert nothing.status_code == 404, nothing.text
    assert nothing.json()["error_code"] == "NoStoredMessages"


async def test_lineage_of_a_completed_execution_has_nothing_to_do(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, parent_id, _ = parent
    response = await _replay(stack, parent_id, replay_source="lineage")
    assert response.status_code == 404, response.text
    assert response.json()["error_code"] == "NoStoredMessages"


async def test_a_replay_from_the_init_route_with_overrides_runs_with_the_new_values(
    stack: Stack, parent: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, parent_id, topics = parent
    child = await _child(
        stack,
        parent_id,
        from_stage="validate",
        init_payload_overrides={"customer": "Globex"},
    )
    await stack.until_status(child, "completed")
    (output,) = await _done(stack, topics, child)
    assert output["summary"] == "order A-1 for Globex"
    (first,) = await _done(stack, topics, parent_id)
    assert first["summary"] == "order A-1 for ACME"
