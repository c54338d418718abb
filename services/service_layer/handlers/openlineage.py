"""RecordRunEvent: an OpenLineage RunEvent applied to the run it names (docs/lineage.md).

The event type is one of seed 002's verbs, by Marquez's own mapping (`EVENT_ACTIONS`), so
the run moves along the same table as `POST /api/v1/jobs/runs/{id}/<verb>` moves it, at
the event's `eventTime`:

- a run not known yet is created first, as a run of no pipeline of ours (its owner is the
  event's job, which it keeps in `args` as `jobNamespace` and `jobName`), with the
  event's run facets and nominal times, created at the event's time;
- what the run's table refuses (`IGNORED`: an event older than the run's last change, any
  event after a final status, a move the table has no edge for) changes nothing and is
  still accepted, as Marquez accepts every event it can read: OpenLineage producers send
  at least once and out of order, and an OTHER event after COMPLETE is the spec's own
  example. The reply says which (`outcome`, and the refusal's code as `reason`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from contracts.openlineage_commands import OpenLineageEventType, RecordRunEvent
from domain.base import Aggregate
from domain.errors import DomainError
from domain.execution import Execution, RunOwnerKind
from domain.run_status import MarquezAction
from services.service_layer.handling import Context, Decision

E = OpenLineageEventType

# eventType -> the seed 002 verb it is: Marquez marks a run RUNNING for START, RUNNING,
# OTHER and no type, and COMPLETED, FAILED, ABORTED for the other three.
EVENT_ACTIONS: Final[Mapping[OpenLineageEventType | None, MarquezAction]] = {
    E.START: MarquezAction.START,
    E.RUNNING: MarquezAction.START,
    E.OTHER: MarquezAction.START,
    None: MarquezAction.START,
    E.COMPLETE: MarquezAction.COMPLETE,
    E.FAIL: MarquezAction.FAIL,
    E.ABORT: MarquezAction.ABORT,
}

# The run table's refusals an event is accepted with, changing nothing.
IGNORED: Final = frozenset(
    {"StaleRunTransition", "RunAlreadyTerminal", "IllegalRunTransition", "UnknownRun"}
)

# Where a run created from an event keeps its job (Marquez's Run has no field for it).
JOB_NAMESPACE_ARG: Final = "jobNamespace"
JOB_NAME_ARG: Final = "jobName"
ACCEPTED_STATUS: Final = 201  # Marquez's answer to an event it took


class Outcome(StrEnum):
    CREATED = "created"  # a new run, moved to the event's state
    MOVED = "moved"
    UNCHANGED = "unchanged"  # the run already had the event's state
    IGNORED = "ignored"  # the run's table refused the move (`reason`)


def run_id_in_use(cmd: RecordRunEvent, found: Aggregate) -> DomainError:
    return DomainError(
        "RunIdInUse",
        f"runId '{cmd.run_id}' names a {type(found).__name__}, not a run",
        {"run_id": str(cmd.run_id), "aggregate_type": type(found).__name__},
        409,
    )


def new_run(cmd: RecordRunEvent, ctx: Context) -> Execution:
    """A run of the event's job, created when the event happened."""
    return Execution(
        execution_id=cmd.run_id,
        owner_kind=RunOwnerKind.PIPELINE,
        at=cmd.event_time,
        route_ids=[],
        args={JOB_NAMESPACE_ARG: cmd.job_namespace, JOB_NAME_ARG: cmd.job_name},
        facets=dict(cmd.run_facets),
        nominal_start_time=cmd.nominal_start_time,
        nominal_end_time=cmd.nominal_end_time,
        timeout=ctx.run_timeout,
    )


def reply(run: Execution, outcome: Outcome, reason: str | None = None) -> dict[str, str | None]:
    return {
        "runId": str(run.id),
        "outcome": str(outcome),
        "state": str(run.marquez_state),
        "reason": reason,
    }


def record_run_event(cmd: RecordRunEvent, ctx: Context) -> Decision:
    found = ctx.uow.get(Aggregate, cmd.run_id)
    if found is not None and not isinstance(found, Execution):
        raise run_id_in_use(cmd, found)
    run = found
    if run is None:
        run = new_run(cmd, ctx)
        ctx.uow.add(run)
    try:
        moved = run.apply_marquez_action(
            EVENT_ACTIONS[cmd.event_type], at=cmd.event_time, now=ctx.now
        )
    except DomainError as refusal:
        if refusal.error_code not in IGNORED:
            raise
        return Decision(run.id, reply(run, Outcome.IGNORED, refusal.error_code), ACCEPTED_STATUS)
    outcome = Outcome.CREATED if found is None else Outcome.MOVED if moved else Outcome.UNCHANGED
    return Decision(run.id, reply(run, outcome), ACCEPTED_STATUS)


__all__ = [
    "ACCEPTED_STATUS",
    "EVENT_ACTIONS",
    "IGNORED",
    "JOB_NAMESPACE_ARG",
    "JOB_NAME_ARG",
    "Outcome",
    "record_run_event",
]
