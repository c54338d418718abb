"""The run status views the read models store beside the canonical status.

Projections read only contracts, so the DESIGN.md mapping table (seed 003's canonical
status to seed 002's and seed 004's) is written out again here; a test holds it equal to
`domain.run_status`.
"""

from __future__ import annotations

from typing import Final

from contracts.statuses import ExecutionStatus, MarquezRunState, RunStatus

S = RunStatus
M = MarquezRunState
E = ExecutionStatus

TERMINAL: Final[frozenset[RunStatus]] = frozenset(
    {S.SUCCESS, S.FAILURE, S.CANCELLED, S.TIMEOUT, S.INVALID, S.INTERRUPTED}
)

# Entering one of these the first time sets `started_at`.
STARTED: Final[frozenset[RunStatus]] = frozenset({S.RUNNING, S.WAITING, S.COMPLETE})
# An execution that ends with one of these stops its unfinished stages with the same status.
CLOSES_OPEN_STAGES: Final[frozenset[RunStatus]] = frozenset({S.CANCELLED, S.TIMEOUT, S.INTERRUPTED})

# canonical -> (seed 002, seed 004)
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
