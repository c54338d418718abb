"""Config commands (seed 004) through Decider.decide on a real event store."""

from __future__ import annotations

from uuid import uuid4

import pytest

from contracts import CreateConfig, RunConfig, UpdateConfig, ValidateConfig
from contracts.statuses import ReplaySource
from domain.adapters import BUILTIN_ADAPTERS, AdapterSpec
from domain.execution import Execution
from domain.run_counter import RunCounter, run_counter_id
from services.service_layer.decider import Decider
from tests.service_layer.decider_support import (
    accepted,
    config_document,
    decide_one,
    opened_decider,
    rejected,
)


def invalid_document() -> dict[str, object]:
    return config_document(adapter="no_such_adapter")


def create_config(decider: Decider) -> CreateConfig:
    command = CreateConfig(name="crawler", document=config_document())
    accepted(decide_one(decider, command))
    return command


def test_create_config_answers_the_stored_config(decider: Decider) -> None:
    command = CreateConfig(name="crawler", document=config_document())
    result = accepted(decide_one(decider, command))
    assert (result.http_status, result.aggregate_id) == (201, str(command.config_id))
    assert result.reply["name"] == "crawler"
    assert result.reply["version"] == 1
    assert result.reply["validation_report"]["is_valid"] is True


def test_an_invalid_document_is_rejected_with_its_report(decider: Decider) -> None:
    command = CreateConfig(name="bad", document=invalid_document())
    result = rejected(decide_one(decider, command))
    assert (result.error_code, result.http_status) == ("ConfigValidationFailed", 400)
    assert result.validation_report is not None
    assert result.validation_report.is_valid is False
    assert result.validation_report.error_count >= 1
    assert result.details == result.validation_report.model_dump(mode="json")
    assert decider.store.recorder.select_events(command.config_id) == []


def test_a_second_create_of_the_same_config_id_is_409(decider: Decider) -> None:
    command = create_config(decider)
    again = CreateConfig(config_id=command.config_id, name="other", document=config_document())
    result = rejected(decide_one(decider, again))
    assert (result.error_code, result.http_status) == ("ConfigAlreadyExists", 409)


def test_update_config_bumps_the_version(decider: Decider) -> None:
    command = create_config(decider)
    result = accepted(
        decide_one(
            decider,
            UpdateConfig(config_id=command.config_id, document=config_document(), name="n2"),
        )
    )
    assert (result.reply["version"], result.reply["name"], result.http_status) == (2, "n2", 200)


def test_update_of_an_unknown_config_is_404(decider: Decider) -> None:
    missing = uuid4()
    result = rejected(decide_one(decider, UpdateConfig(config_id=missing, document={})))
    assert (result.error_code, result.http_status) == ("UnknownConfig", 404)


def test_an_invalid_update_is_rejected_and_keeps_the_old_document(decider: Decider) -> None:
    command = create_config(decider)
    update = UpdateConfig(config_id=command.config_id, document=invalid_document())
    result = rejected(decide_one(decider, update))
    assert result.validation_report is not None
    assert len(decider.store.recorder.select_events(command.config_id)) == 1


@pytest.mark.parametrize("valid", [True, False])
def test_validate_is_always_200_with_the_report_and_stores_nothing(
    decider: Decider, valid: bool
) -> None:
    document = config_document() if valid else invalid_document()
    result = accepted(decide_one(decider, ValidateConfig(document=document)))
    assert (result.http_status, result.aggregate_id, result.event_ids) == (200, None, [])
    assert result.reply["is_valid"] is valid
    assert (result.reply["error_count"] == 0) is valid
    assert decider.store.recorder.max_notification_id() in (None, 0)


def test_run_config_creates_an_execution_and_answers_the_execution_response(
    decider: Decider,
) -> None:
    config = create_config(decider)
    parent = uuid4()
    command = RunConfig(
        config_id=config.config_id,
        tag="nightly",
        init_payload_overrides={"opts": {"m": 2}},
        parent_execution_id=parent,
        replay_source=ReplaySource.STORAGE,
    )
    result = accepted(decide_one(decider, command))
    assert result.http_status == 200
    assert result.reply == {
        "id": str(command.execution_id),
        "config_id": str(config.config_id),
        "status": "running",
        "started_at": result.reply["started_at"],
        "completed_at": None,
        "parent_execution_id": str(parent),
        "root_execution_id": str(parent),  # a parent the store does not know is its own root
        "replay_source": "storage",
        "tag": "nightly",
        "started_by": None,  # decided here, the command names no sender
        "completed_by": None,
    }
    assert result.reply["started_at"].endswith("Z")
    execution: Execution = decider.store.repository.get(command.execution_id)
    assert execution.init_payload == {"url": "https://a", "opts": {"n": 1, "m": 2}}
    assert list(execution.routes) == ["fetch"]
    assert execution.run_number == 1


def test_run_numbers_count_per_config(decider: Decider) -> None:
    config = create_config(decider)
    for _ in range(3):
        accepted(decide_one(decider, RunConfig(config_id=config.config_id)))
    counter: RunCounter = decider.store.repository.get(run_counter_id(config.config_id))
    assert counter.last_run_number == 3


def test_run_of_an_unknown_config_is_404_with_factflow_s_message(decider: Decider) -> None:
    missing = uuid4()
    result = rejected(decide_one(decider, RunConfig(config_id=missing)))
    assert (result.error_code, result.http_status) == ("UnknownConfig", 404)
    assert result.message == f"Config {missing} not found"


def test_a_tag_is_unique_across_executions(decider: Decider) -> None:
    config = create_config(decider)
    first = RunConfig(config_id=config.config_id, tag="t")
    accepted(decide_one(decider, first))
    second = RunConfig(config_id=config.config_id, tag="t")
    result = rejected(decide_one(decider, second))
    assert (result.error_code, result.http_status) == ("DuplicateTag", 409)
    assert decider.store.recorder.select_events(second.execution_id) == []
    counter: RunCounter = decider.store.repository.get(run_counter_id(config.config_id))
    assert counter.last_run_number == 1


def test_a_config_invalid_under_today_s_adapters_cannot_run(store_url: str) -> None:
    plugin = BUILTIN_ADAPTERS.with_specs(AdapterSpec("scrape"))
    create = CreateConfig(name="c", document=config_document(adapter="scrape"))
    with opened_decider(store_url, adapters=plugin) as with_plugin:
        accepted(decide_one(with_plugin, create))
    with opened_decider(store_url) as without_plugin:
        run = RunConfig(config_id=create.config_id)
        result = rejected(decide_one(without_plugin, run))
        assert (result.error_code, result.http_status) == ("ConfigValidationFailed", 400)
        assert result.validation_report is not None
        assert not result.validation_report.is_valid
        assert without_plugin.store.recorder.select_events(run.execution_id) == []
