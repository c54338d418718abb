"""The OpenLineage RunEvents one stored status change of a run is, built with the official
client's models (openlineage-python), from what the stored events say alone, so the same
change always gives the same events, byte for byte once serialized (`Serde.to_json`, keys
sorted): a re-sent event is identical to the first.

Which events (`kinds`):
- START when the run first reaches a started status (running, waiting, complete);
- its end (`ENDINGS`) when it reaches a final status, preceded by a START of the same time
  if it never started (a run cancelled while pending): a consumer always sees one START
  and one end per run, as the spec asks;
- nothing for the other moves (queued, processing, waiting <-> running).

Every event carries the run's job (`RunFacts.job`, with a `jobType` facet), the config's
topics as input and output datasets, a `parent` facet for a replay (its parent and root
runs) and, on FAIL, an `errorMessage` facet with the reason the run was failed with.
`eventTime` is the time the stored event gives the change (`at`: the handler's clock for
our own decisions, the reported time for a run moved with `?at=`), never the time it is
sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import error_message_run, job_type_job, parent_run

from contracts.run_views import STARTED, TERMINAL
from contracts.statuses import RunStatus
from services.service_layer.replies import iso

S = RunStatus

PRODUCER: Final = "urn:pipeline-service"
INTEGRATION: Final = "PIPELINE_SERVICE"
# A run here ends on its own (an execution drains, a pipeline run is finished): BATCH.
PROCESSING_TYPE: Final = "BATCH"

# A final status -> the eventType that ends the run.
ENDINGS: Final[Mapping[RunStatus, RunState]] = {
    S.SUCCESS: RunState.COMPLETE,
    S.FAILURE: RunState.FAIL,
    S.TIMEOUT: RunState.FAIL,
    S.INVALID: RunState.FAIL,
    S.CANCELLED: RunState.ABORT,
    S.INTERRUPTED: RunState.ABORT,
}
assert set(ENDINGS) == TERMINAL


@dataclass(frozen=True)
class JobRef:
    namespace: str
    name: str


@dataclass(frozen=True)
class RunRef:
    run_id: UUID
    job: JobRef


@dataclass(frozen=True)
class RunFacts:
    """What every event of one run says about it."""

    run_id: UUID
    job: JobRef
    job_type: str  # CONFIG_EXECUTION or PIPELINE_RUN
    dataset_namespace: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    parent: RunRef | None = None
    root: RunRef | None = None


@dataclass(frozen=True)
class StatusChange:
    """One stored StatusChanged, and whether the run had started before it."""

    status: RunStatus
    at: datetime
    had_started: bool
    reason: str | None = None


def kinds(change: StatusChange) -> list[RunState]:
    found: list[RunState] = []
    if not change.had_started and (change.status in STARTED or change.status in TERMINAL):
        found.append(RunState.START)
    if change.status in TERMINAL:
        found.append(ENDINGS[change.status])
    return found


def run_events(facts: RunFacts, change: StatusChange) -> list[RunEvent]:
    return [_event(facts, change, kind) for kind in kinds(change)]


def _event(facts: RunFacts, change: StatusChange, kind: RunState) -> RunEvent:
    when = iso(change.at)
    assert when is not None
    return RunEvent(
        eventType=kind,
        eventTime=when,
        producer=PRODUCER,
        run=Run(runId=str(facts.run_id), facets=_run_facets(facts, change, kind)),
        job=Job(
            namespace=facts.job.namespace,
            name=facts.job.name,
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType=PROCESSING_TYPE,
                    integration=INTEGRATION,
                    jobType=facts.job_type,
                    producer=PRODUCER,
                )
            },
        ),
        inputs=[InputDataset(namespace=facts.dataset_namespace, name=t) for t in facts.inputs],
        outputs=[OutputDataset(namespace=facts.dataset_namespace, name=t) for t in facts.outputs],
    )


def _run_facets(facts: RunFacts, change: StatusChange, kind: RunState) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if facts.parent is not None:
        facets["parent"] = parent_facet(facts.parent, facts.root)
    if kind is RunState.FAIL and change.reason:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=change.reason, programmingLanguage="python", producer=PRODUCER
        )
    return facets


def parent_facet(parent: RunRef, root: RunRef | None) -> parent_run.ParentRunFacet:
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=str(parent.run_id)),
        job=parent_run.Job(namespace=parent.job.namespace, name=parent.job.name),
        root=None
        if root is None
        else parent_run.Root(
            run=parent_run.RootRun(runId=str(root.run_id)),
            job=parent_run.RootJob(namespace=root.job.namespace, name=root.job.name),
        ),
        producer=PRODUCER,
    )


def boundary_topics(document: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(inputs, outputs) of a config document: the topics its routes read that none of
    them writes, and those they write (outbound and dead-letter topics) that none reads.
    A topic one route writes and another reads is the config's own hand-over: listing it
    both ways would draw the job as its own input."""
    routes = list(document.get("routes", {}).values())
    read = {route["inbound"]["topic"] for route in routes}
    written = {topic for route in routes for topic in route.get("outbound", [])}
    written |= {
        dead
        for route in routes
        if (dead := (route.get("error_handling") or {}).get("dead_letter_topic"))
    }
    return tuple(sorted(read - written)), tuple(sorted(written - read))


__all__ = [
    "ENDINGS",
    "INTEGRATION",
    "PRODUCER",
    "JobRef",
    "RunFacts",
    "RunRef",
    "StatusChange",
    "boundary_topics",
    "kinds",
    "parent_facet",
    "run_events",
]
