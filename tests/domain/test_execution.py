"""The Execution aggregate: creation for pipeline and config runs, the status verbs,
terminal immutability, delete, and replay from events and snapshots."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from uuid6 import uuid7

from contracts.statuses import ReplaySource, RunStatus
from domain.execution import DEFAULT_RUN_TIMEOUT, Execution, RunOwnerKind
from domain.run_status import TERMINAL
from tests.domain.execution_builders import T0, answer, at, new_run, refused

S = RunStatus


# --- creation -----------------------------------------------------------------------------


def test_config_run_keeps_what_seed_004_returns() -> None:
    execution_id, config_id, parent = uuid7(), uuid4(), uuid7()
    run = Execution.for_config(
        execution_id=execution_id,
        config_id=config_id,
        config_version=3,
        at=T0,
        route_ids=["ingest", "parse", "ingest"],
        config_init_payload={"source": {"bucket": "b", "prefix": "in/"}, "limit": 10},
        init_payload_overrides={"source": {"prefix": "replay/"}, "limit": None},
        init_route="ingest",
        tag="nightly-1",
        parent_execution_id=parent,
        replay_source=ReplaySource.STORAGE,
        skip_init_message=True,
        run_number=4,
    )
    assert run.id == execution_id and run.id.version == 7
    assert (run.owner_kind, run.config_id, run.config_version) == (
        RunOwnerKind.CONFIG,
        config_id,
        3,
    )
    assert run.init_payload == {"source": {"bucket": "b", "prefix": "replay/"}, "limit": None}
    assert run.init_payload_overrides == {"source": {"prefix": "replay/"}, "limit": None}
    assert (run.tag, run.parent_execution_id, run.replay_source) == (
        "nightly-1",
        parent,
        ReplaySource.STORAGE,
    )
    assert run.skip_init_message and run.init_route == "ingest" and run.run_number == 4
    assert list(run.routes) == ["ingest", "parse"]  # duplicates collapse, order kept
    assert all(stage.status is S.PENDING for stage in run.routes.values())
    assert (run.status, run.created_at, run.started_at, run.ended_at) == (S.PENDING, T0, None, None)
    assert run.execution_status.value == "running" and run.marquez_state.value == "NEW"


def test_pipeline_run_is_owned_by_its_pipeline_and_numbered() -> None:
    pipeline_id = uuid4()
    run = Execution.for_pipeline(
        execution_id=uuid7(),
        pipeline_id=pipeline_id,
        run_number=7,
        at=T0,
        args={"email": "me@example.com", "retries": "1"},
        nominal_start_time=at(-60),
    )
    assert (run.owner_kind, run.pipeline_id, run.run_number) == (
        RunOwnerKind.PIPELINE,
        pipeline_id,
        7,
    )
    assert run.args == {"email": "me@example.com", "retries": "1"}
    assert run.facets == {} and run.nominal_start_time == at(-60) and run.nominal_end_time is None
    assert run.init_payload is None and run.routes == {}


def test_later_edits_of_the_callers_payload_do_not_leak_in() -> None:
    base: dict[str, Any] = {"opts": {"depth": 1}}
    overrides: dict[str, Any] = {"opts": {"width": 2}}
    run = Execution.for_config(
        execution_id=uuid7(),
        config_id=uuid4(),
        config_version=1,
        at=T0,
        route_ids=["a"],
        config_init_payload=base,
        init_payload_overrides=overrides,
    )
    base["opts"]["depth"] = 99
    overrides["opts"]["width"] = 99
    assert run.init_payload == {"opts": {"depth": 1, "width": 2}}


# --- verbs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "status"),
    [
        ("start", S.RUNNING),
        ("cancel", S.CANCELLED),
    ],
)
def test_each_convenience_verb_moves_to_its_status(verb: str, status: RunStatus) -> None:
    run = new_run()
    assert getattr(run, verb)(now=at(1)) is True
    assert run.status is status
    assert getattr(run, verb)(now=at(2)) is False  # a repeat is a no-op
    assert run.collect_events()[-1].status is status  # type: ignore[attr-defined]


@pytest.mark.parametrize("action", ["start", "complete", "fail", "abort"])
def test_seed_002_actions_drive_the_run(action: str) -> None:
    run = new_run()
    run.apply_marquez_action(action, at=at(1), now=at(2))
    assert (
        run.marquez_state.value
        == {
            "start": "RUNNING",
            "complete": "COMPLETED",
            "fail": "FAILED",
            "abort": "ABORTED",
        }[action]
    )


def test_only_a_run_without_routes_is_invalid() -> None:
    run = new_run(routes=("a", "b"))
    e = refused(run, lambda: run.transition(S.INVALID, now=at(1)))
    assert answer(e) == (
        409,
        "RunHasRoutes",
        f"Run '{run.id}' has 2 route(s); only a run with no stages is invalid",
        {"run_id": str(run.id), "routes": ["a", "b"]},
    )
    empty = new_run(routes=())
    assert empty.transition(S.INVALID, now=at(1)) is True
    assert (empty.status, empty.execution_status.value) == (S.INVALID, "failed")


@pytest.mark.parametrize("final", sorted(TERMINAL))
def test_a_terminal_run_never_changes(final: RunStatus) -> None:
    run = new_run(routes=("a",) if final is not S.INVALID else ())
    run.transition(final, now=at(1))
    run.collect_events()
    for other in RunStatus:
        if other is final:
            assert run.transition(other, now=at(2)) is False
            continue
        e = refused(run, lambda other=other: run.transition(other, now=at(2)))  # type: ignore[misc]
        assert e.error_code == "RunAlreadyTerminal"
    past_deadline = at(1) + DEFAULT_RUN_TIMEOUT
    if final is S.TIMEOUT:
        assert run.time_out(now=past_deadline) is False
    else:
        assert refused(run, lambda: run.time_out(now=past_deadline)).error_code == (
            "RunAlreadyTerminal"
        )
    assert refused(run, lambda: run.stage_started("a", at=at(3))).error_code == (
        "RunAlreadyTerminal"
    )
    assert run.collect_events() == []


def test_stage_reports_on_a_finished_run_are_refused() -> None:
    run = new_run()
    run.cancel(now=at(1))
    run.collect_events()
    e = refused(run, lambda: run.stage_progress("a", 1, 1, 0, at=at(2)))
    assert answer(e) == (
        409,
        "RunAlreadyTerminal",
        f"Run '{run.id}' is already 'cancelled', a final status, and accepts no 'stage_progress'",
        {"run_id": str(run.id), "from": "cancelled", "action": "stage_progress"},
    )


# --- delete -------------------------------------------------------------------------------


def test_a_deleted_run_is_not_found() -> None:
    run = new_run()
    run.transition(S.SUCCESS, now=at(1))
    run.delete(at=at(2))
    assert run.deleted
    run.collect_events()
    expected = (404, "UnknownRun", f"Run '{run.id}' not found.", {"run_id": str(run.id)})
    for call in (
        lambda: run.start(now=at(3)),
        lambda: run.transition(S.SUCCESS, now=at(3)),  # even the status it already has
        lambda: run.time_out(now=at(3) + DEFAULT_RUN_TIMEOUT),
        lambda: run.stage_started("a", at=at(3)),
        lambda: run.delete(at=at(3)),
    ):
        assert answer(refused(run, call)) == expected


# --- replay -------------------------------------------------------------------------------


def busy_run() -> Execution:
    run = new_run(tag="t", replay_source=ReplaySource.LINEAGE, init_payload_overrides={"x": [1]})
    run.start(at=at(1), now=at(1))
    run.stage_started("a", at=at(2))
    run.stage_progress("a", 3, 2, 1, at=at(3))
    run.stage_finished("a", S.SUCCESS, at=at(4))
    run.transition(S.COMPLETE, now=at(5))
    run.collect_events()
    return run


def test_replaying_serialised_events_rebuilds_the_same_run() -> None:
    run = Execution.for_config(
        execution_id=uuid7(),
        config_id=uuid4(),
        config_version=1,
        at=T0,
        route_ids=["a", "b"],
        config_init_payload={"k": {"v": 1}},
        init_payload_overrides={"k": {"w": 2}},
        tag="t",
        replay_source=ReplaySource.LINEAGE,
        timeout=timedelta(days=2),
    )
    run.start(at=at(1), now=at(1))
    run.stage_started("a", at=at(2))
    run.stage_progress("a", 3, 2, 1, at=at(3))
    run.stage_finished("a", S.SUCCESS, at=at(4))
    run.transition(S.FAILURE, at=at(2), now=at(5))  # late: clamped to the last transition
    rebuilt: Execution | None = None
    e: Any
    for e in run.collect_events():
        copy_ = type(e).model_validate_json(e.model_dump_json())
        rebuilt = copy_.mutate(rebuilt)
    assert isinstance(rebuilt, Execution)
    assert vars(rebuilt) == vars(run)
    assert rebuilt.deadline == T0 + timedelta(days=2)
    assert rebuilt.init_payload == {"k": {"v": 1, "w": 2}}


def test_snapshot_round_trip() -> None:
    run = busy_run()
    snapshot = Execution.Snapshot.take(run)
    restored = type(snapshot).model_validate_json(snapshot.model_dump_json()).mutate(None)
    assert isinstance(restored, Execution)
    assert vars(restored) == vars(run)
    assert (restored.duration_ms, restored.deadline) == (run.duration_ms, run.deadline)
    # The restored run keeps working, and the snapshot is not edited through it.
    restored.stage_started("b", at=at(6))
    assert snapshot.state.routes["b"].status is S.PENDING
