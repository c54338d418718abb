"""DeleteConfig through Decider.decide on a real event store, with the read models beside
it (what uses a config), projected here from the stored events as the projector would."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from contracts import CreateConfig, CreatePipeline, DeletePipeline, RunConfig, UpdateConfig
from contracts.config_commands import DeleteConfig
from contracts.replay_commands import ReplayExecution
from contracts.run_commands import CancelExecution
from contracts.statuses import ReplaySource
from projections.projector import Projector
from projections.store import ReadStore
from services.runtimes.projector import history
from services.service_layer.decider import Decider
from tests.service_layer.decider_support import (
    accepted,
    config_document,
    decide,
    decide_one,
    item,
    opened_decider,
    rejected,
)


@pytest.fixture
def with_reads(store_url: str) -> Iterator[tuple[Decider, ReadStore]]:
    with opened_decider(store_url) as decider, ReadStore(store_url) as read:
        decider.usage = read
        yield decider, read


def project(decider: Decider, read: ReadStore) -> None:
    """Bring the read models level with the event store (what the projector does)."""
    Projector(read).apply_batch(list(history(decider.store)))


def new_config(decider: Decider) -> UUID:
    command = CreateConfig(name="doomed", document=config_document())
    accepted(decide_one(decider, command))
    return command.config_id


def test_an_unused_config_is_deleted_once_and_is_unknown_after(
    with_reads: tuple[Decider, ReadStore],
) -> None:
    decider, read = with_reads
    config_id = new_config(decider)
    project(decider, read)
    assert read.get_config(str(config_id)) is not None

    deleted = accepted(decide_one(decider, DeleteConfig(config_id=config_id)))
    assert (deleted.http_status, deleted.reply, deleted.aggregate_version) == (204, None, 2)
    project(decider, read)
    assert read.get_config(str(config_id)) is None
    assert read.list_configs() == (0, [])

    for later in (
        DeleteConfig(config_id=config_id),
        UpdateConfig(config_id=config_id, document=config_document()),
        RunConfig(config_id=config_id),
        CreatePipeline(name="p", config_id=config_id),
    ):
        refused = rejected(decide_one(decider, later))
        assert (refused.error_code, refused.http_status) == ("UnknownConfig", 404), later
    refused = rejected(
        decide_one(
            decider, CreateConfig(config_id=config_id, name="again", document=config_document())
        )
    )
    assert refused.error_code == "ConfigAlreadyExists"


def test_a_delete_waits_for_the_read_models_to_show_every_execution(
    with_reads: tuple[Decider, ReadStore],
) -> None:
    decider, read = with_reads
    config_id = new_config(decider)
    run = RunConfig(config_id=config_id)
    delete = item(DeleteConfig(config_id=config_id))

    # The run and the delete in one batch: the run is not even stored yet.
    outcomes = decider.decide([item(run), delete])
    accepted(outcomes[0].result)
    not_yet = rejected(outcomes[1].result)
    assert (not_yet.error_code, not_yet.http_status) == ("ConfigExecutionsNotProjected", 503)
    assert not_yet.details == {
        "config_id": str(config_id),
        "executions_started": 1,
        "executions_projected": 0,
    }
    # Stored, not projected: still 503, and a 503 is not recorded, so the same command
    # id is decided again once the read model has the run.
    assert rejected(decider.decide([delete])[0].result).error_code == "ConfigExecutionsNotProjected"
    project(decider, read)
    in_use = rejected(decider.decide([delete])[0].result)
    assert (in_use.error_code, in_use.http_status) == ("ConfigInUse", 409)
    assert in_use.details["running_executions"] == [
        {"id": str(run.execution_id), "status": "pending"}
    ]
    assert (in_use.details["running_executions_total"], in_use.details["pipelines"]) == (1, [])

    accepted(decide_one(decider, CancelExecution(execution_id=run.execution_id)))
    project(decider, read)
    # The 409 was an answer, recorded: that command id keeps it. A new delete succeeds.
    assert decider.decide([delete])[0].result == in_use
    again = item(DeleteConfig(config_id=config_id))
    assert accepted(decider.decide([again])[0].result).http_status == 204
    repeat = decider.decide([again])[0]
    assert repeat.repeated and repeat.result.outcome == "accepted"
    project(decider, read)
    # The execution keeps its history, and a replay of it onto the deleted config is refused.
    execution = read.get_execution(str(run.execution_id))
    assert execution is not None and execution["status"] == "cancelled"
    replay = ReplayExecution(
        parent=str(run.execution_id),
        replay_source=ReplaySource.MANUAL,
        to_route="fetch",
        messages=[{"n": 1}],
    )
    assert rejected(decide_one(decider, replay)).error_code == "UnknownConfig"


def test_a_config_a_pipeline_names_is_refused_until_the_pipeline_is_gone(
    with_reads: tuple[Decider, ReadStore],
) -> None:
    decider, read = with_reads
    config_id = new_config(decider)
    other = new_config(decider)
    decide(
        decider,
        CreatePipeline(name="uses-it", config_id=config_id),
        CreatePipeline(name="uses-another", config_id=other),
    )
    project(decider, read)
    in_use = rejected(decide_one(decider, DeleteConfig(config_id=config_id)))
    assert in_use.error_code == "ConfigInUse"
    assert (in_use.details["pipelines"], in_use.details["pipelines_total"]) == (["uses-it"], 1)
    assert "1 pipeline(s) use it" in in_use.message

    accepted(decide_one(decider, DeletePipeline(pipeline_name="uses-it")))
    project(decider, read)
    accepted(decide_one(decider, DeleteConfig(config_id=config_id)))


def test_without_read_models_a_delete_is_not_decided(decider: Decider) -> None:
    refused = rejected(decide_one(decider, DeleteConfig(config_id=new_config(decider))))
    assert (refused.error_code, refused.http_status) == ("ConfigUseUnknown", 503)
