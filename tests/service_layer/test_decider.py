"""The decider with the real handlers on SQLite and PostgreSQL: dedupe by command id,
ordered commands on one instance per batch, per-command rollback, internal errors,
conflicts re-decided, and one transaction for a batch's events and command records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import LRUCache
from eventsourcing.persistence import OperationalError

from contracts import (
    Command,
    CreatePipeline,
    DeletePipeline,
    DismissPipelineError,
    StartPipeline,
    StopPipeline,
    UpdatePipeline,
)
from domain.name_index import name_index_id
from services.adapters.stores import (
    AGGREGATE_CACHE_MAXSIZE,
    PIPELINE_SNAPSHOT_INTERVAL,
    open_command_store,
)
from services.service_layer.decider import Decider
from services.service_layer.handlers import HANDLERS
from services.service_layer.handlers.pipelines import pipeline_named
from services.service_layer.handling import Context, Decision, Handler
from tests.service_layer.decider_support import (
    Clock,
    accepted,
    decide,
    decide_one,
    item,
    rejected,
    stored_pipeline,
)


class Counting:
    """A handler wrapper that counts its calls."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls = 0

    def __call__(self, command: Any, ctx: Context) -> Decision:
        self.calls += 1
        return self.handler(command, ctx)


def with_handler(decider: Decider, command_type: type[Command], handler: Handler) -> Decider:
    return Decider(decider.store, {**HANDLERS, command_type: handler}, clock=Clock())


def topics_of(decider: Decider, aggregate_id: UUID) -> list[str]:
    return [e.topic.rsplit(".", 1)[-1] for e in decider.store.recorder.select_events(aggregate_id)]


def test_a_repeated_command_id_gets_the_stored_bytes_without_the_domain(
    decider: Decider,
) -> None:
    counting = Counting(HANDLERS[StartPipeline])
    d = with_handler(decider, StartPipeline, counting)
    accepted(decide_one(d, CreatePipeline(name="p1")))
    start = item(StartPipeline(pipeline_name="p1"), "start-1")
    [first] = d.decide([start])
    pipeline_version = stored_pipeline(d.store, "p1").version

    [again] = d.decide([start])
    assert again.repeated and not first.repeated
    assert again.value == first.value
    assert again.result == first.result
    assert counting.calls == 1
    assert stored_pipeline(d.store, "p1").version == pipeline_version


def test_a_repeated_rejection_stays_the_original_rejection(decider: Decider) -> None:
    start = item(StartPipeline(pipeline_name="p1"), "early-start")
    [first] = decider.decide([start])
    assert rejected(first.result).error_code == "UnknownPipelineName"
    accepted(decide_one(decider, CreatePipeline(name="p1")))
    [again] = decider.decide([start])
    assert again.value == first.value
    assert again.repeated


def test_the_same_command_id_twice_in_one_batch_is_decided_once(decider: Decider) -> None:
    counting = Counting(HANDLERS[CreatePipeline])
    d = with_handler(decider, CreatePipeline, counting)
    create = item(CreatePipeline(name="p1"), "create-1")
    first, second = d.decide([create, create])
    assert counting.calls == 1
    assert accepted(first.result).http_status == 201
    assert (second.value, second.repeated) == (first.value, True)
    assert d.recorder.select_processed(["create-1"]) == {"create-1": first.value}
    assert topics_of(d, UUID(str(first.result.aggregate_id))) == ["Created"]


def test_commands_on_one_pipeline_in_one_batch_run_in_order_on_one_instance(
    decider: Decider,
) -> None:
    results = decide(
        decider,
        CreatePipeline(name="p1"),
        UpdatePipeline(pipeline_name="p1", description="one"),
        StartPipeline(pipeline_name="p1"),
        StopPipeline(pipeline_name="p1", force=True),
        UpdatePipeline(pipeline_name="p1", description="two"),
    )
    versions = [accepted(r).aggregate_version for r in results]
    assert versions == [1, 2, 3, 4, 5]
    pipeline_id = UUID(str(results[0].aggregate_id))
    assert topics_of(decider, pipeline_id) == [
        "Created",
        "Updated",
        "StartRequested",
        "StopRequested",
        "Updated",
    ]
    assert stored_pipeline(decider.store, "p1").description == "two"


def test_a_rejected_command_mid_batch_leaves_no_events_while_the_others_are_saved(
    decider: Decider,
) -> None:
    results = decide(
        decider,
        CreatePipeline(name="p1"),
        StartPipeline(pipeline_name="p1"),
        # Claims the name "p2" (a new NameIndex), then the pipeline refuses the rename
        # because it is no longer fully stopped: the claim must not survive.
        UpdatePipeline(pipeline_name="p1", name="p2"),
        UpdatePipeline(pipeline_name="p1", description="kept"),
    )
    assert rejected(results[2]).error_code == "UpdateRestrictedToStopped"
    assert [type(r).__name__ for r in results] == ["CommandAccepted"] * 2 + [
        "CommandRejected",
        "CommandAccepted",
    ]
    pipeline_id = UUID(str(results[0].aggregate_id))
    assert topics_of(decider, pipeline_id) == ["Created", "StartRequested", "Updated"]
    assert decider.store.recorder.select_events(name_index_id("p2")) == []
    assert topics_of(decider, name_index_id("p1")) == ["Claimed"]
    processed = decider.recorder.select_processed([r.command_id for r in results])
    assert len(processed) == 4


def test_a_handler_that_raises_is_an_internal_error_and_saves_nothing_of_it(
    decider: Decider,
) -> None:
    def exploding(command: StopPipeline, ctx: Context) -> Decision:
        pipeline_named(ctx, command.pipeline_name).stop(force=True, at=ctx.now)
        raise RuntimeError("bug after the event")

    d = with_handler(decider, StopPipeline, exploding)
    results = decide(
        d,
        CreatePipeline(name="p1"),
        StartPipeline(pipeline_name="p1"),
        StopPipeline(pipeline_name="p1"),
        DismissPipelineError(pipeline_name="p1"),
    )
    failure = rejected(results[2])
    assert (failure.error_code, failure.http_status) == ("InternalError", 500)
    assert failure.message == "The StopPipeline handler failed: RuntimeError"
    accepted(results[3])
    pipeline_id = UUID(str(results[0].aggregate_id))
    assert topics_of(d, pipeline_id) == ["Created", "StartRequested"]
    assert stored_pipeline(d.store, "p1").resources_desired_status == "Provisioned"


def test_a_conflict_with_another_writer_is_resolved_by_deciding_again(
    decider: Decider, store_url: str
) -> None:
    accepted(decide_one(decider, CreatePipeline(name="p1")))
    counting = Counting(HANDLERS[UpdatePipeline])
    ours = with_handler(decider, UpdatePipeline, counting)
    with open_command_store(store_url) as other_store:
        other = Decider(other_store, HANDLERS, clock=Clock())
        accepted(decide_one(other, UpdatePipeline(pipeline_name="p1", description="theirs")))

    # Our cache still holds version 1: the first save conflicts, the second decides anew.
    result = accepted(decide_one(ours, UpdatePipeline(pipeline_name="p1", description="ours")))
    assert counting.calls == 2
    assert result.aggregate_version == 3
    pipeline_id = UUID(str(result.aggregate_id))
    assert topics_of(ours, pipeline_id) == ["Created", "Updated", "Updated"]
    assert stored_pipeline(ours.store, "p1").description == "ours"


def test_events_and_command_records_of_a_batch_share_one_transaction(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = decider.recorder
    original: Callable[..., object] = recorder._insert_events

    def insert_then_fail(*args: Any, **kwargs: Any) -> object:
        original(*args, **kwargs)
        raise RuntimeError("the disk filled up after the rows were written")

    monkeypatch.setattr(recorder, "_insert_events", insert_then_fail)
    batch = [item(CreatePipeline(name="p1"), "c1"), item(StartPipeline(pipeline_name="p1"), "s1")]
    with pytest.raises(RuntimeError):
        decider.decide(batch)
    assert recorder.select_events(name_index_id("p1")) == []
    assert recorder.max_notification_id() in (None, 0)
    assert recorder.select_processed(["c1", "s1"]) == {}

    # Redelivered, the same batch goes through.
    monkeypatch.undo()
    decider.drop_cache()
    outcomes = decider.decide(batch)
    assert [o.repeated for o in outcomes] == [False, False]
    assert set(recorder.select_processed(["c1", "s1"])) == {"c1", "s1"}


def test_the_command_store_caches_without_fast_forward_and_snapshots_pipelines(
    decider: Decider,
) -> None:
    repository = decider.store.repository
    assert isinstance(repository.cache, LRUCache)
    assert repository.cache.maxsize == AGGREGATE_CACHE_MAXSIZE
    assert repository.fastforward is False
    every = PIPELINE_SNAPSHOT_INTERVAL
    updates = [UpdatePipeline(pipeline_name="p1", description=str(n)) for n in range(every - 2)]
    results = decide(decider, CreatePipeline(name="p1"), *updates)
    assert accepted(results[-1]).aggregate_version == every - 1
    assert decider.store.snapshots is not None
    pipeline_id = UUID(str(results[0].aggregate_id))
    assert list(decider.store.snapshots.get(pipeline_id)) == []
    # The batch that crosses the interval snapshots the pipeline as it leaves it.
    more = [UpdatePipeline(pipeline_name="p1", description=f"x{n}") for n in range(3)]
    results = decide(decider, *more)
    snapshots = list(decider.store.snapshots.get(pipeline_id))
    assert [s.originator_version for s in snapshots] == [every + 2]


def test_a_cached_aggregate_a_failed_command_mutated_is_rebuilt_not_reused(
    decider: Decider, store_url: str
) -> None:
    # Batch 1 leaves the pipeline in the cache (the batch mutates cached instances in place).
    accepted(decide_one(decider, CreatePipeline(name="p1")))

    def exploding(command: StopPipeline, ctx: Context) -> Decision:
        pipeline_named(ctx, command.pipeline_name).stop(force=True, at=ctx.now)
        raise RuntimeError("bug after the event")

    d = with_handler(decider, StopPipeline, exploding)
    # Batch 2: the failed stop touched the cached instance; only the start may survive.
    results = decide(d, StartPipeline(pipeline_name="p1"), StopPipeline(pipeline_name="p1"))
    accepted(results[0])
    rejected(results[1])
    # Batch 3 reads through the cache: it must see the start and not the failed stop.
    third = accepted(decide_one(decider, DismissPipelineError(pipeline_name="p1")))
    cached = stored_pipeline(decider.store, "p1")
    assert cached.resources_desired_status == "Provisioned"
    assert third.aggregate_version == 2
    with open_command_store(store_url) as fresh:
        assert stored_pipeline(fresh, "p1").resources_desired_status == "Provisioned"
        assert stored_pipeline(fresh, "p1").version == cached.version == 2


def test_a_batch_that_fails_to_save_leaves_no_trace_in_the_cache(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted(decide_one(decider, CreatePipeline(name="p1")))
    store = decider.store

    def down(*_: Any, **__: Any) -> Any:
        raise OperationalError("database briefly unavailable")

    monkeypatch.setattr(store, "save", down)
    with pytest.raises(OperationalError):
        decide(decider, StartPipeline(pipeline_name="p1"))
    monkeypatch.undo()
    # The unsaved start must not be visible to the next batch through the cache: a
    # pipeline that never started may be deleted.
    result = accepted(decide_one(decider, DeletePipeline(pipeline_name="p1")))
    assert result.aggregate_version == 2
