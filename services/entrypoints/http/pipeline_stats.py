"""Seeds 000/001: what a deployed pipeline reports of itself, in Feldera's shapes.

- `GET /v0/pipelines/{name}/stats`: Feldera's ControllerStatus (`global_metrics`, one
  `inputs` entry per route, one `outputs` entry per route and outbound topic).
- `GET /v0/pipelines/{name}/checkpoint_status?incarnation_uuid=`: Feldera's
  CheckpointStatus, `{success, failure}`.

Feldera forwards both to the pipeline process; here the pipeline's route workers run in
the reconciler, which writes down what they did (services/runtimes/reconciler/route_stats.py,
at the end of every sweep in which it changed) and the checkpoints it took
(services/runtimes/reconciler/checkpoints.py); the API reads those tables and the
pipelines read model. Both pass Feldera's gate first: a pipeline that is not Provisioned
is 503 PipelineInteractionNotDeployed, as Feldera answers when there is no process to
ask (docs/pipeline-lifecycle.md §2.3). Feldera's `incarnation_uuid` (the pipeline
process) is the deployment id.

What the stats mean here (docs/pipeline-lifecycle.md, "Feldera's SDK"):

- records and bytes are the routes' inbound records handled and committed, and what
  they published; steps are the routes' batches; a count is up to one reconciler sweep
  behind the workers and starts from zero with each deployment; nothing is ever buffered.
  What is not measured (memory, CPU, storage) is 0.
- `state` is `Running` while the runtime status is Running, else `Paused`: Feldera's
  third state, `Terminated`, is not one the SDK can parse, and a pipeline here never
  terminates on its own.
- `pipeline_complete` is null: a pipeline reads Kafka topics, which have no end of input,
  so it is never complete in Feldera's sense (Feldera's own pipelines with a Kafka input
  report false for ever, and the SDK's `wait_for_completion` then waits for ever). Null
  ("not known") makes `wait_for_completion` raise at once instead; `wait_for_idle`,
  which compares the input and processed counts, is the SDK's way to wait until a
  pipeline has caught up.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from contracts.statuses import CombinedDesiredStatus, CombinedStatus, RuntimeStatus
from contracts.statuses import ResourcesStatus as R
from domain import pipeline_errors
from domain.errors import DomainError
from projections.rows import Row
from projections.times import parse
from services.entrypoints.http import error_docs
from services.entrypoints.http.errors import invalid_query_parameter
from services.entrypoints.http.pipeline_reads import no_cache
from services.entrypoints.http.pipeline_writes_seen import settled_row
from services.runtimes.reconciler.checkpoints import Checkpoints
from services.runtimes.reconciler.route_stats import RouteCounts, RouteStats

router = APIRouter(prefix="/v0/pipelines", tags=["pipelines"])

HEALTHY: Final = {"status": "Healthy", "description": None}


class DeploymentRecords:
    """What the reconciler writes down of deployments, as the API reads it (one connection
    per table store); `app.state.deployment_records`."""

    def __init__(self, url: str) -> None:
        self.checkpoints = Checkpoints(url)
        try:
            self.route_stats = RouteStats(url)
        except BaseException:
            self.checkpoints.close()
            raise

    def close(self) -> None:
        self.checkpoints.close()
        self.route_stats.close()


def records_of(request: Request) -> DeploymentRecords:
    records: DeploymentRecords = request.app.state.deployment_records
    return records


async def deployed(request: Request, name: str) -> Row:
    """The pipeline's row, if it is deployed: Feldera's gate (404, then 503)."""
    row = await settled_row(request, name)
    if row is None:
        raise pipeline_errors.unknown_pipeline(name)
    if row["deployment_resources_status"] != R.PROVISIONED or row["deployment_id"] is None:
        raise pipeline_errors.pipeline_interaction_not_deployed(
            name,
            CombinedStatus(row["deployment_status"]),
            CombinedDesiredStatus(row["deployment_desired_status"]),
        )
    if row["deployment_runtime_status"] == RuntimeStatus.UNAVAILABLE:
        raise pipeline_errors.pipeline_unavailable(name)
    return row


# --- /stats ----------------------------------------------------------------------------------


def _epoch_s(at: str | None) -> int:
    return 0 if at is None else int(parse(at).timestamp())


def global_metrics(row: Row, routes: list[RouteCounts], now: datetime) -> dict[str, Any]:
    consumed = sum(r.consumed for r in routes)
    consumed_bytes = sum(r.consumed_bytes for r in routes)
    batches = sum(r.batches for r in routes)
    since = row["deployment_resources_status_since"]
    uptime_ms = 0 if since is None else max(0, int((now - parse(since)).total_seconds() * 1000))
    running = row["deployment_runtime_status"] == RuntimeStatus.RUNNING
    return {
        "state": "Running" if running else "Paused",
        "bootstrap_in_progress": False,
        "transaction_status": "NoTransaction",
        "transaction_id": 0,
        "transaction_initiators": {
            "transaction_id": None,
            "initiated_by_api": None,
            "initiated_by_connectors": {},
        },
        "concurrent_bootstrap_phase": "Inactive",
        "rss_bytes": 0,
        "memory_pressure": "low",
        "memory_pressure_epoch": 0,
        "cpu_msecs": 0,
        "uptime_msecs": uptime_ms,
        "start_time": _epoch_s(since),
        "incarnation_uuid": row["deployment_id"],
        "initial_start_time": _epoch_s(since),
        "storage_bytes": 0,
        "storage_mb_secs": 0,
        "runtime_elapsed_msecs": 0,
        "buffered_input_records": 0,
        "buffered_input_bytes": 0,
        "total_input_records": consumed,
        "total_input_bytes": consumed_bytes,
        "total_processed_records": consumed,
        "total_processed_bytes": consumed_bytes,
        "total_completed_records": consumed,
        "output_stall_msecs": 0,
        "total_initiated_steps": batches,
        "total_completed_steps": batches,
        "pipeline_complete": None,
    }


def inputs(routes: list[RouteCounts]) -> list[dict[str, Any]]:
    return [
        {
            "endpoint_name": r.route,
            "config": {"stream": r.inbound},
            "metrics": {
                "total_bytes": r.consumed_bytes,
                "total_records": r.consumed,
                "buffered_records": 0,
                "buffered_bytes": 0,
                "num_transport_errors": r.retries,
                "num_parse_errors": 0,
                "end_of_input": False,
            },
            # A route that fails stops the deployment (its error is the pipeline's
            # deployment_error), so a deployed route never has a fatal error.
            "fatal_error": None,
            "parse_errors": [],
            "transport_errors": [],
            "health": HEALTHY,
            "paused": False,
            "barrier": False,
            "consuming": r.consuming,
            "last_error": r.last_error,
        }
        for r in routes
    ]


def outputs(routes: list[RouteCounts]) -> list[dict[str, Any]]:
    return [
        {
            "endpoint_name": f"{r.route}.{topic}",
            "config": {"stream": topic},
            "metrics": {
                "transmitted_records": r.produced,
                "transmitted_bytes": r.produced_bytes,
                "queued_records": 0,
                "queued_batches": 0,
                "buffered_records": 0,
                "buffered_batches": 0,
                "num_encode_errors": 0,
                "num_transport_errors": 0,
                "total_processed_input_records": r.consumed,
                "total_processed_steps": r.batches,
                "memory": 0,
            },
            "fatal_error": None,
            "encode_errors": [],
            "transport_errors": [],
            "health": HEALTHY,
            "paused": False,
        }
        for r in routes
        for topic in r.outbound
    ]


def controller_status(row: Row, routes: list[RouteCounts], now: datetime) -> dict[str, Any]:
    """Feldera's ControllerStatus for the deployed pipeline `row` whose routes did `routes`."""
    return {
        "global_metrics": global_metrics(row, routes, now),
        "suspend_error": None,
        "permanent_checkpoint_errors": None,
        "checkpoint_activity": {"status": "idle"},
        "inputs": inputs(routes),
        "outputs": outputs(routes),
    }


@router.get(
    "/{pipeline_name}/stats",
    summary="Get the pipeline's statistics",
    description="Feldera's ControllerStatus, from what the reconciler last wrote down of "
    "the current deployment's routes (docs/pipeline-lifecycle.md, \"Feldera's SDK\").",
    responses=error_docs.feldera(404, 503),
)
async def get_stats(request: Request, pipeline_name: str) -> Response:
    try:
        row = await deployed(request, pipeline_name)
    except DomainError as error:
        return no_cache(request, error)
    routes = await asyncio.to_thread(
        records_of(request).route_stats.of, UUID(row["id"]), UUID(row["deployment_id"])
    )
    return no_cache(request, controller_status(row, routes, datetime.now(UTC)))


# --- /checkpoint_status -----------------------------------------------------------------------


def parse_incarnation(raw: str | None) -> UUID | None:
    if raw is None:
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise invalid_query_parameter("incarnation_uuid", raw, "a UUID") from None


@router.get(
    "/{pipeline_name}/checkpoint_status",
    summary="Get the pipeline's checkpoint status",
    description="`success`: the highest `/checkpoint` sequence number the pipeline's last "
    "checkpoint answers (null: none yet); `failure` is always null (a checkpoint that "
    "cannot be taken stops the deployment with its error). With `incarnation_uuid` (the "
    "`/checkpoint` answer's), a deployment other than the current one is 400 "
    "IncarnationUuidMismatch.",
    responses=error_docs.feldera(400, 404, 503),
)
async def get_checkpoint_status(
    request: Request,
    pipeline_name: str,
    incarnation_uuid: Annotated[
        str | None, Query(description="The deployment `/checkpoint` answered with")
    ] = None,
) -> Response:
    try:
        wanted = parse_incarnation(incarnation_uuid)
        row = await deployed(request, pipeline_name)
        current = UUID(row["deployment_id"])
        if wanted is not None and wanted != current:
            raise pipeline_errors.incarnation_uuid_mismatch(wanted, current)
    except DomainError as error:
        return no_cache(request, error)
    head = await asyncio.to_thread(records_of(request).checkpoints.head, UUID(row["id"]))
    success = None if head is None or head.sequence_number == 0 else head.sequence_number
    return no_cache(request, {"success": success, "failure": None})


__all__ = [
    "DeploymentRecords",
    "controller_status",
    "global_metrics",
    "parse_incarnation",
    "router",
]
