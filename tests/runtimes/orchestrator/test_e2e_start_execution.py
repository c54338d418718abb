"""FactFlow's `POST /api/v1/executions {config_id, trigger_context, idempotency_key}` end to
end: it starts the same run as `POST /configs/{id}/run` (the example completes), keeps the
trigger context with the execution, answers a repeated key with the first run, and refuses
bad bodies and unknown configs in FactFlow's shapes."""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest

from domain.execution import Execution
from services.adapters.stores import open_command_store
from tests.runtimes.orchestrator.e2e_support import EXECUTIONS, Stack, module_stack, orders_document

pytestmark = pytest.mark.broker

stack = module_stack("start-execution")


@pytest.fixture(scope="module")
async def config_id(stack: Stack) -> UUID:
    return await stack.create_config(orders_document())


async def test_a_started_execution_runs_and_keeps_its_trigger_context(
    stack: Stack, config_id: UUID
) -> None:
    trigger = {"by": "scheduler", "cron": "0 * * * *"}
    response = await stack.client.post(
        EXECUTIONS, json={"config_id": str(config_id), "trigger_context": trigger}
    )
    assert response.status_code == 200, response.text
    started = response.json()
    assert started["config_id"] == str(config_id)
    assert started["status"] == "running"
    execution_id = UUID(started["id"])
    await stack.until_status(execution_id, "completed")
    with open_command_store(stack.settings.event_store_url) as store:
        execution = store.repository.get(execution_id)
    assert isinstance(execution, Execution)
    assert execution.facets == {"trigger_context": trigger}


async def test_one_idempotency_key_is_one_execution(stack: Stack, config_id: UUID) -> None:
    body = {"config_id": str(config_id), "idempotency_key": f"nightly-{uuid.uuid4()}"}
    answers = [await stack.client.post(EXECUTIONS, json=body) for _ in range(3)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["id"] for a in answers}) == 1
    await stack.until_status(UUID(answers[0].json()["id"]), "completed")


async def test_a_key_used_by_another_kind_of_write_is_409(stack: Stack, config_id: UUID) -> None:
    key = f"k-{uuid.uuid4()}"
    cancel = await stack.client.post(
        f"{EXECUTIONS}/{uuid.uuid4()}/cancel", headers={"Idempotency-Key": key}
    )
    assert cancel.status_code == 404, cancel.text
    reused = await stack.client.post(
        EXECUTIONS, json={"config_id": str(config_id), "idempotency_key": key}
    )
    assert reused.status_code == 409, reused.text
    assert reused.json()["error_code"] == "IdempotencyKeyReused"


@pytest.mark.parametrize(
    "body",
    [{}, {"config_id": "not-a-uuid"}, {"config_id": str(uuid.uuid4()), "surprise": 1}],
    ids=["no config", "bad id", "unknown field"],
)
async def test_a_bad_body_is_422(stack: Stack, body: dict[str, object]) -> None:
    response = await stack.client.post(EXECUTIONS, json=body)
    assert response.status_code == 422, response.text


async def test_an_unknown_config_is_404(stack: Stack) -> None:
    response = await stack.client.post(EXECUTIONS, json={"config_id": str(uuid.uuid4())})
    assert response.status_code == 404, response.text
    assert response.json()["error_code"] == "UnknownConfig"
