"""The Execution aggregate's stage runs: counters that only grow, checked reports, and the
stages an execution stopped from outside closes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from contracts.statuses import RunStatus
from domain.execution import DEFAULT_RUN_TIMEOUT, Execution
from tests.domain.execution_builders import answer, at, new_run, refused

S = RunStatus


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


# --- an execution stopped from outside --------------------------------------------------


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
