"""The Execution aggregate: creation for pipeline and config runs, time rules, terminal
immutability, deadlines, stage runs, delete, and replay from events and snapshots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from uuid6 import uuid7

from contracts.statuses import ReplaySource, RunStatus
from domain.errors import DomainError
from domain.execution import DEFAULT_RUN_TIMEOUT, Execution, RunOwnerKind
from domain.run_status import TERMINAL

S = RunStatus
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_run(routes: tuple[str, ...] = ("a", "b"), **kwargs: Any) -> Execution:
    run = Execution.for_config(
        execution_id=uuid7(),
        config_id=uuid4(),
        config_version=1,
        at=T0,
        route_ids=routes,
        config_init_payload={"source": "s3://bucket", "opts": {"depth": 1}},
        **kwargs,
    )
    run.collect_events()
    return run


def refused(run: Execution, call: Callable[[], object]) -> DomainError:
    """Run `call`, expect a DomainError and no change at all to the aggregate."""
    before = (dict(vars(run)), run.version, list(run.pending_events))
    with pytest.raises(DomainError) as caught:
        call()
    assert (dict(vars(run)), run.version, list(run.pending_events)) == before
    return caught.value


def answer(e: DomainError) -> tuple[int, str, str, Any]:
    return (e.http_status, e.error_code, e.message, e.details)


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


# --- time ---------------------------------------------------------------------------------


def test_a_transition_takes_its_at_and_falls_back_to_now() -> None:
    run = new_run()
    run.start(at=at(5), now=at(100))
    assert (run.started_at, run.last_transition_at) == (at(5), at(5))
    run.transition(S.WAITING, now=at(200))
    assert run.last_transition_at == at(200)
    run.transition(S.RUNNING, now=at(300))
    assert run.started_at == at(5)  # resuming is not starting again
    run.transition(S.SUCCESS, now=at(400))
    assert (run.ended_at, run.duration_ms) == (at(400), 395_000)
    assert run.updated_at == at(400)


def test_the_first_transition_may_predate_creation() -> None:
    # Seed 002's own example reports a startedAt before the run's createdAt.
    run = new_run()
    run.start(at=at(-3600), now=at(1))
    assert run.started_at == at(-3600)


def test_a_late_non_terminal_message_is_stale() -> None:
    run = new_run()
    run.start(at=at(10), now=at(10))
    run.transition(S.WAITING, at=at(20), now=at(20))
    e = refused(run, lambda: run.transition(S.RUNNING, at=at(15), now=at(30)))
    assert answer(e) == (
        409,
        "StaleRunTransition",
        f"Run '{run.id}' cannot move from 'waiting' to 'running' at {at(15).isoformat()}: "
        f"it last changed at {at(20).isoformat()}",
        {
            "run_id": str(run.id),
            "from": "waiting",
            "to": "running",
            "at": at(15).isoformat(),
            "last_transition_at": at(20).isoformat(),
        },
    )
    # The same moment is not in the past.
    assert run.transition(S.RUNNING, at=at(20), now=at(30)) is True


def test_a_late_terminal_message_ends_the_run_without_rewinding_time() -> None:
    run = new_run()
    run.start(at=at(10), now=at(10))
    run.transition(S.WAITING, at=at(20), now=at(20))
    run.collect_events()
    assert run.transition(S.SUCCESS, at=at(12), now=at(30)) is True
    (changed,) = run.collect_events()
    assert (changed.status, changed.at, changed.reported_at) == (S.SUCCESS, at(20), at(12))  # type: ignore[attr-defined]
    assert (run.status, run.ended_at, run.duration_ms) == (S.SUCCESS, at(20), 10_000)


def test_a_late_start_never_regresses_a_finished_run() -> None:
    # Marquez#2264: a retried START after COMPLETE turned a run back to RUNNING.
    run = new_run()
    run.start(at=at(1), now=at(1))
    run.transition(S.SUCCESS, at=at(9), now=at(9))
    e = refused(run, lambda: run.start(at=at(1), now=at(10)))
    assert e.error_code == "RunAlreadyTerminal"


def test_a_run_that_never_ran_has_no_duration() -> None:
    run = new_run()
    run.transition(S.SUCCESS, at=at(3), now=at(3))
    assert (run.started_at, run.ended_at, run.duration_ms) == (None, at(3), None)


def test_skipping_running_still_records_a_start() -> None:
    run = new_run()
    run.transition(S.COMPLETE, at=at(4), now=at(4))
    assert run.started_at == at(4) and run.ended_at is None


def test_naive_times_are_utc() -> None:
    run = new_run()
    run.start(at=datetime(2026, 3, 1, 12, 0, 5), now=at(6))
    assert run.started_at == at(5)
    assert run.started_at.tzinfo is not None


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


# --- deadline -----------------------------------------------------------------------------


def test_the_deadline_is_21_days_after_creation_by_default() -> None:
    run = new_run()
    assert run.deadline == T0 + timedelta(days=21)
    run.start(now=at(1))
    e = refused(run, lambda: run.time_out(now=run.deadline - timedelta(microseconds=1)))
    assert (e.error_code, e.http_status) == ("RunDeadlineNotReached", 409)
    assert e.details["deadline"] == (T0 + timedelta(days=21)).isoformat()
    assert run.time_out(now=run.deadline) is True
    assert (run.status, run.ended_at, run.marquez_state.value) == (
        S.TIMEOUT,
        run.deadline,
        "FAILED",
    )
    assert run.time_out(now=run.deadline) is False


def test_the_timeout_is_configurable() -> None:
    run = new_run(timeout=timedelta(hours=2))
    assert run.deadline == T0 + timedelta(hours=2)
    assert run.time_out(now=at(7200)) is True


def test_a_complete_run_does_not_time_out() -> None:
    run = new_run()
    run.transition(S.COMPLETE, now=at(1))
    e = refused(run, lambda: run.time_out(now=run.deadline))
    assert e.error_code == "IllegalRunTransition"


# --- stage runs ---------------------------------------------------------------------------


def test_a_stage_runs_counts_and_finishes() -> None:
    run = new_run()
    run.start(now=at(0))
    assert run.stage_started("a", at=at(1)) is True
    assert run.stage_started("a", at=at(2)) is False
    assert run.stage_progress("a", 10, 8, 1, at=at(3)) is True
    # Cumulative: an older, smaller report changes nothing; a partial increase raises only it.
    assert run.stage_progress("a", 5, 4, 0, at=at(4)) is False
    assert run.stage_progress("a", 5, 9, 0, at=at(5)) is True
    stage = run.routes["a"]
    assert (stage.messages_in, stage.messages_out, stage.messages_failed) == (10, 9, 1)
    assert run.stage_finished("a", "success", at=at(6), messages_in=12) is True
    stage = run.routes["a"]
    assert (stage.status, stage.messages_in, stage.started_at, stage.ended_at) == (
        S.SUCCESS,
        12,
        at(1),
        at(6),
    )
    assert run.routes["b"].status is S.PENDING
    run.stage_finished("b", S.FAILURE, at=at(7))
    assert [stage.status for stage in run.routes.values()] == [S.SUCCESS, S.FAILURE]
    assert run.routes["b"].started_at is None
    assert run.status is S.RUNNING  # the orchestrator decides the run's outcome


def test_stage_reports_are_checked() -> None:
    run = new_run()
    e = refused(run, lambda: run.stage_started("zz", at=at(1)))
    assert answer(e) == (
        404,
        "UnknownRoute",
        f"Route 'zz' is not part of run '{run.id}'",
        {"run_id": str(run.id), "route": "zz"},
    )
    e = refused(run, lambda: run.stage_progress("a", -1, 0, 0, at=at(1)))
    assert (e.error_code, e.http_status) == ("InvalidStageReport", 400)
    e = refused(run, lambda: run.stage_finished("a", S.RUNNING, at=at(1)))
    assert (e.error_code, e.details["reason"]) == (
        "InvalidStageReport",
        "'running' is not a final status",
    )
    run.stage_finished("a", S.SUCCESS, at=at(2))
    run.collect_events()
    assert run.stage_finished("a", S.SUCCESS, at=at(3)) is False
    for call in (
        lambda: run.stage_finished("a", S.FAILURE, at=at(3)),
        lambda: run.stage_started("a", at=at(3)),
        lambda: run.stage_progress("a", 1, 1, 1, at=at(3)),
    ):
        e = refused(run, call)
        assert answer(e) == (
            409,
            "StageAlreadyFinished",
            f"Route 'a' of run '{run.id}' already finished as 'success'",
            {"run_id": str(run.id), "route": "a", "status": "success"},
        )


def test_a_stage_never_ends_before_it_started() -> None:
    run = new_run()
    run.stage_started("a", at=at(10))
    run.stage_finished("a", S.SUCCESS, at=at(5))
    assert run.routes["a"].ended_at == at(10)


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


@pytest.mark.parametrize(
    "stop",
    [
        lambda run: run.cancel(now=at(30)),
        lambda run: run.transition(S.INTERRUPTED, now=at(30)),
        lambda run: run.time_out(now=at(30) + DEFAULT_RUN_TIMEOUT),
    ],
    ids=["cancel", "interrupt", "time_out"],
)
def test_an_execution_stopped_from_outside_stops_its_open_stages(
    stop: Callable[[Execution], object],
) -> None:
    run = new_run(routes=("a", "b", "c"))
    run.start(now=at(1))
    run.stage_started("a", at=at(2))
    run.stage_finished("a", "success", at=at(3), messages_in=1, messages_out=1)
    run.stage_started("b", at=at(4))
    run.stage_progress("b", 3, 2, 0, at=at(5))
    stop(run)
    a, b, c = (run.routes[route] for route in ("a", "b", "c"))
    assert a.status is RunStatus.SUCCESS and a.ended_at == at(3)
    assert b.status is run.status and c.status is run.status
    assert (b.messages_in, b.messages_out, b.ended_at) == (3, 2, run.ended_at)
    assert c.started_at is None and c.ended_at == run.ended_at


def test_a_failed_execution_leaves_its_stages_to_their_reports() -> None:
    run = new_run()
    run.start(now=at(1))
    run.stage_started("a", at=at(2))
    run.transition(S.FAILURE, now=at(3))
    assert run.routes["a"].status is RunStatus.RUNNING
