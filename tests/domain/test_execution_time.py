"""The Execution aggregate's time rules: a transition's time, late messages, naive times,
and the deadline a run times out at."""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts.statuses import RunStatus
from tests.domain.execution_builders import T0, answer, at, new_run, refused

S = RunStatus


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
