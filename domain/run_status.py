"""The run status machine: one canonical vocabulary (`RunStatus`, seed 003 plus
`interrupted`), its transition table, seed 002's actions, and the errors a run command
is refused with. Which statuses are final and what seeds 002 and 004 show for each are
`contracts.run_views` (the read models derive the same).

The table (`TRANSITIONS`) is the single source of truth: `Execution` reads it, and the
tests walk every (from, to) pair against it. Its shape follows Esper's documented
lifecycle, pending -> queued -> processing -> running (<-> waiting) -> complete ->
success | failure, with these decisions:

- Moving forward may skip steps (Marquez's NEW -> RUNNING is pending -> running);
  nothing moves backward except waiting -> running (a waiting run resumes).
- success and failure are reachable from every non-terminal status: Marquez's own tests
  go NEW -> COMPLETED and NEW -> FAILED, and a RUNNING run may complete without passing
  through `complete`.
- `complete` is not terminal, but it is past the point of no return: all stage runs are
  processed, so it moves only to success or failure, or to interrupted when the
  orchestrator finds it unfinished after a crash (seed 004 shows it as `running`).
- cancelled and timeout are reachable from every status before `complete`.
- invalid ("no stageruns") is decided before running: from pending, queued, processing.
- interrupted is reachable from every non-terminal status and is TERMINAL. Resuming an
  interrupted run is a new execution (a replay with `parent_execution_id`), never an edge
  out of interrupted, so an interrupted run's history stays closed.
- Terminal statuses (success, failure, cancelled, timeout, invalid, interrupted) have no
  way out. Asking for the status a run already has is an idempotent no-op, terminal or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, Final
from uuid import UUID

from contracts.orchestrator_commands import ExecutionDecision
from contracts.run_views import TERMINAL
from contracts.statuses import RunStatus
from domain.errors import DomainError

S = RunStatus

# from-status -> the statuses it may move to (same -> same is a no-op, not listed).
TRANSITIONS: Final[Mapping[RunStatus, frozenset[RunStatus]]] = {
    S.PENDING: frozenset(
        {
            S.QUEUED, S.PROCESSING, S.RUNNING, S.WAITING, S.COMPLETE,
            S.SUCCESS, S.FAILURE, S.CANCELLED, S.TIMEOUT, S.INVALID, S.INTERRUPTED,
        }
    ),
    S.QUEUED: frozenset(
        {
            S.PROCESSING, S.RUNNING, S.WAITING, S.COMPLETE,
            S.SUCCESS, S.FAILURE, S.CANCELLED, S.TIMEOUT, S.INVALID, S.INTERRUPTED,
        }
    ),
    S.PROCESSING: frozenset(
        {
            S.RUNNING, S.WAITING, S.COMPLETE,
            S.SUCCESS, S.FAILURE, S.CANCELLED, S.TIMEOUT, S.INVALID, S.INTERRUPTED,
        }
    ),
    S.RUNNING: frozenset(
        {S.WAITING, S.COMPLETE, S.SUCCESS, S.FAILURE, S.CANCELLED, S.TIMEOUT, S.INTERRUPTED}
    ),
    S.WAITING: frozenset(
        {S.RUNNING, S.COMPLETE, S.SUCCESS, S.FAILURE, S.CANCELLED, S.TIMEOUT, S.INTERRUPTED}
    ),
    S.COMPLETE: frozenset({S.SUCCESS, S.FAILURE, S.INTERRUPTED}),
    S.SUCCESS: frozenset(),
    S.FAILURE: frozenset(),
    S.CANCELLED: frozenset(),
    S.TIMEOUT: frozenset(),
    S.INVALID: frozenset(),
    S.INTERRUPTED: frozenset(),
}  # fmt: skip

# A stage run (one route of an execution): Esper's stage-run statuses without the
# in-between ones our orchestrator never reports.
STAGE_TRANSITIONS: Final[Mapping[RunStatus, frozenset[RunStatus]]] = {
    S.PENDING: frozenset({S.RUNNING}) | TERMINAL,
    S.RUNNING: TERMINAL,
    **{status: frozenset() for status in TERMINAL},
}


class MarquezAction(StrEnum):
    """Seed 002's `POST /jobs/runs/{id}/<action>` verbs."""

    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"
    ABORT = "abort"


FROM_MARQUEZ_ACTION: Final[Mapping[MarquezAction, RunStatus]] = {
    MarquezAction.START: S.RUNNING,
    MarquezAction.COMPLETE: S.SUCCESS,
    MarquezAction.FAIL: S.FAILURE,
    MarquezAction.ABORT: S.CANCELLED,
}


def from_marquez_action(action: MarquezAction | str) -> RunStatus:
    """The canonical status a seed 002 action moves a run to."""
    try:
        return FROM_MARQUEZ_ACTION[MarquezAction(action)]
    except ValueError:
        raise DomainError(
            "UnknownRunAction",
            f"Unknown run action '{action}'; expected one of "
            f"{', '.join(a.value for a in MarquezAction)}",
            {"action": str(action), "allowed": [a.value for a in MarquezAction]},
            400,
        ) from None


class Verdict(Enum):
    """What asking a run in one status to move to another amounts to."""

    MOVE = "move"
    NO_OP = "no_op"
    ILLEGAL = "illegal"
    TERMINAL = "terminal"


def verdict(
    current: RunStatus,
    target: RunStatus,
    table: Mapping[RunStatus, frozenset[RunStatus]] = TRANSITIONS,
) -> Verdict:
    if current == target:
        return Verdict.NO_OP
    if current in TERMINAL:
        return Verdict.TERMINAL
    return Verdict.MOVE if target in table.get(current, ()) else Verdict.ILLEGAL


def stage_verdict(current: RunStatus, target: RunStatus) -> Verdict:
    return verdict(current, target, STAGE_TRANSITIONS)


# --- errors a run command can be refused with ---------------------------------------------


def _refused(code: str, run_id: UUID, message: str, status: int, /, **details: Any) -> DomainError:
    """A refused run command; its details name the run first."""
    return DomainError(code, message, {"run_id": str(run_id), **details}, status)


def _moves(current: RunStatus, target: RunStatus) -> dict[str, str]:
    return {"from": current.value, "to": target.value}


def illegal_run_transition(run_id: UUID, current: RunStatus, target: RunStatus) -> DomainError:
    message = f"Run '{run_id}' cannot move from '{current}' to '{target}'"
    return _refused("IllegalRunTransition", run_id, message, 409, **_moves(current, target))


def run_already_terminal(run_id: UUID, current: RunStatus, target: RunStatus) -> DomainError:
    return _already_terminal(run_id, current, f"cannot move to '{target}'", to=target.value)


def run_already_finished(run_id: UUID, current: RunStatus, action: str) -> DomainError:
    """A terminal run refuses every change, not only status moves (stage reports too)."""
    return _already_terminal(run_id, current, f"accepts no '{action}'", action=action)


def _already_terminal(run_id: UUID, current: RunStatus, refusal: str, **what: str) -> DomainError:
    message = f"Run '{run_id}' is already '{current}', a final status, and {refusal}"
    return _refused("RunAlreadyTerminal", run_id, message, 409, **{"from": current.value}, **what)


def stale_run_transition(
    run_id: UUID, current: RunStatus, target: RunStatus, at: str, last_at: str
) -> DomainError:
    message = (
        f"Run '{run_id}' cannot move from '{current}' to '{target}' at {at}: "
        f"it last changed at {last_at}"
    )
    moves = _moves(current, target)
    return _refused(
        "StaleRunTransition", run_id, message, 409, **moves, at=at, last_transition_at=last_at
    )


def unknown_run(run_id: UUID) -> DomainError:
    # Marquez's RunNotFoundException wording, seed 002.
    return _refused("UnknownRun", run_id, f"Run '{run_id}' not found.", 404)


# --- errors of stage reports and other run commands ----------------------------------------


def unknown_route(run_id: UUID, route: str) -> DomainError:
    message = f"Route '{route}' is not part of run '{run_id}'"
    return _refused("UnknownRoute", run_id, message, 404, route=route)


def stage_already_finished(run_id: UUID, route: str, current: RunStatus) -> DomainError:
    what = f" already finished as '{current}'"
    return _stage_error("StageAlreadyFinished", run_id, route, what, {"status": current.value})


def illegal_stage_transition(
    run_id: UUID, route: str, current: RunStatus, target: RunStatus
) -> DomainError:
    what = f" cannot move from '{current}' to '{target}'"
    return _stage_error("IllegalStageTransition", run_id, route, what, _moves(current, target))


def invalid_stage_report(run_id: UUID, route: str, reason: str) -> DomainError:
    what = f": {reason}"
    return _stage_error("InvalidStageReport", run_id, route, what, {"reason": reason}, 400)


def _stage_error(
    code: str, run_id: UUID, route: str, what: str, details: dict[str, str], status: int = 409
) -> DomainError:
    """A refused stage report: "Route 'r' of run 'id'" and `what`, with both in `details`."""
    message = f"Route '{route}' of run '{run_id}'{what}"
    return _refused(code, run_id, message, status, route=route, **details)


def run_has_routes(run_id: UUID, routes: list[str]) -> DomainError:
    message = f"Run '{run_id}' has {len(routes)} route(s); only a run with no stages is invalid"
    return _refused("RunHasRoutes", run_id, message, 409, routes=routes)


def run_deadline_not_reached(run_id: UUID, deadline: datetime, now: datetime) -> DomainError:
    message = f"Run '{run_id}' cannot time out before its deadline {deadline.isoformat()}"
    when = {"deadline": deadline.isoformat(), "now": now.isoformat()}
    return _refused("RunDeadlineNotReached", run_id, message, 409, **when)


def stale_decision(
    execution_id: UUID, decision: ExecutionDecision, expected: int | None, actual: int
) -> DomainError:
    return DomainError(
        "StaleDecision",
        f"Decision '{decision}' on execution '{execution_id}' was made at version {expected}, "
        f"but the execution is at version {actual}",
        {
            "execution_id": str(execution_id),
            "decision": decision.value,
            "expected_version": expected,
            "version": actual,
        },
        409,
    )
