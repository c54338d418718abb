"""The executions read model: one row per Execution aggregate (a pipeline run of seeds
002/003 or a config execution of seed 004), with its stage runs under `stages`.

Mirrors `domain.execution.Execution`'s events. Besides the canonical `status` a row keeps
the views seeds 002 and 004 answer with (`marquez_state`, `execution_status`), the run's
`duration_ms` and its `deadline` (`created_at + timeout`, for the timeout sweep). What a
status means (final, started, its seed views, the stages it closes) is
`contracts.run_views`, as in the aggregate.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from contracts import run_views
from contracts.events import LifecycleEvent
from contracts.statuses import RunStatus
from projections.rows import Data, Row, Step, apply_with
from projections.times import duration, iso, latest, parse

# Created's data fields copied to the row as they are (ids, flags, JSON objects).
_COPIED: Final[tuple[str, ...]] = (
    "owner_kind",
    "pipeline_id",
    "config_id",
    "config_version",
    "run_number",
    "tag",
    "parent_execution_id",
    "root_execution_id",
    "replay_source",
    "skip_init_message",
    "init_route",
    "init_payload",
    "init_payload_overrides",
)


def _with_views(row: Row) -> Row:
    status = RunStatus(row["status"])
    row["marquez_state"] = str(run_views.marquez_state(status))
    row["execution_status"] = str(run_views.execution_status(status))
    started, ended = row["started_at"], row["ended_at"]
    row["duration_ms"] = (
        None
        if started is None or ended is None
        else (parse(ended) - parse(started)) // timedelta(milliseconds=1)
    )
    return row


def _stage(route: str) -> Row:
    return {
        "route": route,
        "status": str(RunStatus.PENDING),
        "messages_in": 0,
        "messages_out": 0,
        "messages_failed": 0,
        "started_at": None,
        "ended_at": None,
    }


def _created(event: LifecycleEvent) -> Row:
    data = event.data
    at = iso(data["at"])
    assert at is not None
    timeout = duration(data.get("timeout", "P21D"))
    row: Row = {"id": event.aggregate_id, **{field: data.get(field) for field in _COPIED}}
    row.update(
        args=dict(data.get("args") or {}),
        facets=dict(data.get("facets") or {}),
        nominal_start_time=iso(data.get("nominal_start_time")),
        nominal_end_time=iso(data.get("nominal_end_time")),
        timeout_s=timeout.total_seconds(),
        deadline=iso(run_views.deadline(parse(at), timeout)),
        status=str(RunStatus.PENDING),
        created_at=at,
        updated_at=at,
        started_at=None,
        ended_at=None,
        last_transition_at=None,
        # who sent the command that created it, and the one that ended it (cancelled it,
        # or the orchestrator's decision): the events' `sent_by`
        created_by=data.get("sent_by"),
        ended_by=None,
        deleted=False,
        stages=[_stage(route) for route in dict.fromkeys(data.get("route_ids", []))],
    )
    return _with_views(row)


def _touch(row: Row, at: str | None) -> None:
    row["updated_at"] = latest(row["updated_at"], at)


def _status_changed(row: Row, data: Data) -> Row:
    status, at = RunStatus(data["status"]), iso(data["at"])
    row["status"] = str(status)
    row["last_transition_at"] = at
    _touch(row, at)
    if status in run_views.STARTED and row["started_at"] is None:
        row["started_at"] = at
    if status in run_views.TERMINAL:
        row["ended_at"] = at
        row["ended_by"] = data.get("sent_by")
    for stage in row["stages"]:
        if run_views.closes_stage(status, RunStatus(stage["status"])):
            stage["status"] = str(status)
            stage["ended_at"] = _stage_end(at, stage["started_at"])
    return _with_views(row)


def _stage_end(at: str | None, started_at: str | None) -> str | None:
    assert at is not None  # every stage event carries its time
    return iso(run_views.stage_end(parse(at), None if started_at is None else parse(started_at)))


def _replace_stage(row: Row, route: str, **changes: Any) -> Row:
    row["stages"] = [
        {**stage, **changes} if stage["route"] == route else stage for stage in row["stages"]
    ]
    return row


def _stage_of(row: Row, route: str) -> Row:
    found: Row = next(stage for stage in row["stages"] if stage["route"] == route)
    return found


def _counts(data: Data) -> dict[str, int]:
    return {key: data[key] for key in ("messages_in", "messages_out", "messages_failed")}


def _stage_started(row: Row, data: Data) -> Row:
    at = iso(data["at"])
    _touch(row, at)
    return _replace_stage(row, data["route"], status=str(RunStatus.RUNNING), started_at=at)


def _stage_progressed(row: Row, data: Data) -> Row:
    _touch(row, iso(data["at"]))
    return _replace_stage(row, data["route"], **_counts(data))


def _stage_finished(row: Row, data: Data) -> Row:
    at = iso(data["at"])
    ended = _stage_end(at, _stage_of(row, data["route"])["started_at"])
    _touch(row, at)
    return _replace_stage(
        row, data["route"], status=data["status"], ended_at=ended, **_counts(data)
    )


def _deleted(row: Row, data: Data) -> Row:
    row["deleted"] = True
    _touch(row, iso(data["at"]))
    return row


STEPS: Final[dict[str, Step]] = {
    "StatusChanged": _status_changed,
    "StageStarted": _stage_started,
    "StageProgressed": _stage_progressed,
    "StageFinished": _stage_finished,
    "Deleted": _deleted,
}


def apply(event: LifecycleEvent, row: Row | None) -> Row:
    return apply_with(_created, STEPS, event, row)
