"""What a run's canonical status means, derived in one place: which statuses are final,
which mark the start, what seeds 002 and 004 show for each, and which stages an
execution closes when it is stopped from outside.

The Execution aggregate and the executions read model both compute these here, so the
replies the handler gives and the rows the API reads agree by construction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from contracts.statuses import ExecutionStatus, MarquezRunState, RunStatus

S = RunStatus
M = MarquezRunState
E = ExecutionStatus


def deadline(created_at: datetime, timeout: timedelta) -> datetime:
    """When a run created at `created_at` times out; a run created near the end of time
    (year 9999) is never due rather than an overflow."""
    try:
        return created_at + timeout
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


# A run in one of these has ended and never moves again.
TERMINAL: Final[frozenset[RunStatus]] = frozenset(
    {S.SUCCESS, S.FAILURE, S.CANCELLED, S.TIMEOUT, S.INVALID, S.INTERRUPTED}
)

# Entering one of these the first time is when a run "started" (seed 002's startedAt):
# running itself, or a later non-terminal status if running was skipped.
STARTED: Final[frozenset[RunStatus]] = frozenset({S.RUNNING, S.WAITING, S.COMPLETE})

# An execution stopped from outside (cancel, deadline, crash) stops its unfinished stages
# with its own status: nobody will report them again, and they must not read as running.
CLOSES_OPEN_STAGES: Final[frozenset[RunStatus]] = frozenset({S.CANCELLED, S.TIMEOUT, S.INTERRUPTED})

# canonical (seed 003) -> (seed 002's view, seed 004's view)
VIEWS: Final[dict[RunStatus, tuple[MarquezRunState, ExecutionStatus]]] = {
    S.PENDING: (M.NEW, E.RUNNING),
    S.QUEUED: (M.NEW, E.RUNNING),
    S.PROCESSING: (M.RUNNING, E.RUNNING),
    S.RUNNING: (M.RUNNING, E.RUNNING),
    S.WAITING: (M.RUNNING, E.RUNNING),
    S.COMPLETE: (M.RUNNING, E.RUNNING),
    S.SUCCESS: (M.COMPLETED, E.COMPLETED),
    S.FAILURE: (M.FAILED, E.FAILED),
    S.TIMEOUT: (M.FAILED, E.FAILED),
    S.INVALID: (M.FAILED, E.FAILED),
    S.CANCELLED: (M.ABORTED, E.CANCELLED),
    S.INTERRUPTED: (M.ABORTED, E.INTERRUPTED),
}


def marquez_state(status: RunStatus) -> MarquezRunState:
    return VIEWS[status][0]


def execution_status(status: RunStatus) -> ExecutionStatus:
    return VIEWS[status][1]


def closes_stage(run: RunStatus, stage: RunStatus) -> bool:
    """Whether a run entering status `run` ends a stage in status `stage` (with `run`)."""
    return run in CLOSES_OPEN_STAGES and stage not in TERMINAL


def stage_end(at: datetime, started_at: datetime | None) -> datetime:
    """When a stage ends: at `at`, but never before it started (a report's clock may lag)."""
    return at if started_at is None else max(at, started_at)
