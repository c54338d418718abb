"""`POST /api/v1/lineage`'s body: an OpenLineage RunEvent, checked by the official client's
models (openlineage-python; the package ships no JSON Schema to validate against).

The client's attrs models check the formats the spec gives (`eventTime` a date-time with a
time, `runId` a UUID, `eventType` one of its six words, a nominal time's date-times) but
not the JSON types around them, so this module checks those first, field by field, and
names the first field that is wrong: every bad body is one 400 `InvalidLineageEvent` in
Marquez's `{code, message}`, whose message says where.

What the spec requires is required: `eventTime`, `producer`, `run.runId`, `job.namespace`
and `job.name`. `schemaURL` (which the spec requires too) may be absent, as Marquez
accepts; when present it is a string. Facets must be objects; what a facet holds is the
producer's (custom facets are open by the spec). `eventTime` needs an offset or `Z`,
as Marquez's ZonedDateTime does: a time without one names no instant. A DatasetEvent or
JobEvent (no `run`) is refused: only runs are recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypeVar
from uuid import UUID

import orjson
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import nominal_time_run

from contracts.openlineage_commands import OpenLineageEventType, RecordRunEvent
from domain.errors import DomainError

INVALID: Final = "InvalidLineageEvent"
NOMINAL_TIME: Final = "nominalTime"  # the run facet Marquez reads nominal times from

T = TypeVar("T")
JsonObject = dict[str, Any]


def invalid(where: str, problem: str) -> DomainError:
    return DomainError(
        INVALID,
        f"Invalid OpenLineage RunEvent: {where} {problem}",
        {"field": where, "problem": problem},
        400,
    )


def _object(value: Any, where: str) -> JsonObject:
    if not isinstance(value, dict):
        raise invalid(where, "must be a JSON object")
    return value


def _string(parent: JsonObject, key: str, where: str, *, required: bool = True) -> str | None:
    value = parent.get(key)
    if value is None:
        if required:
            raise invalid(f"{where}{key}", "is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise invalid(f"{where}{key}", "must be a non-empty string")
    return value


def _required(parent: JsonObject, key: str, where: str = "") -> str:
    found = _string(parent, key, where)
    assert found is not None
    return found


def _facets(parent: JsonObject, key: str, where: str) -> JsonObject:
    """`parent[key]`: an object of facets, each an object (absent: none)."""
    value = parent.get(key)
    if value is None:
        return {}
    facets = _object(value, f"{where}{key}")
    for name, facet in facets.items():
        _object(facet, f"{where}{key}.{name}")
    return facets


def _built(where: str, build: Callable[[], T]) -> T:
    """A client model, its validators' ValueError as the 400 at `where`."""
    try:
        return build()
    except (ValueError, TypeError) as error:
        raise invalid(where, f"is not valid: {error}") from None


def _instant(value: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(where, f"is not an ISO-8601 date-time: '{value}'") from None
    if moment.tzinfo is None:
        raise invalid(where, f"needs an offset or 'Z' to name an instant: '{value}'")
    return moment


def _datasets(raw: JsonObject, key: str, facets_key: str) -> list[JsonObject]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(key, "must be an array")
    datasets = []
    for n, item in enumerate(value):
        where = f"{key}[{n}]."
        dataset = _object(item, f"{key}[{n}]")
        _required(dataset, "namespace", where)
        _required(dataset, "name", where)
        _facets(dataset, "facets", where)
        _facets(dataset, facets_key, where)
        datasets.append(dataset)
    return datasets


def run_event(body: bytes) -> RunEvent:
    """The body as the client's RunEvent, or the 400 naming what is wrong."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise invalid("the body", f"is not JSON: {error}") from None
    raw = _object(parsed, "the body")
    if raw.get("run") is None:
        raise invalid("run", "is required: only RunEvents are recorded (no Dataset or Job events)")
    event_time = _required(raw, "eventTime")
    producer = _required(raw, "producer")
    _string(raw, "schemaURL", "", required=False)
    run_raw = _object(raw["run"], "run")
    if raw.get("job") is None:
        raise invalid("job", "is required")
    job_raw = _object(raw["job"], "job")
    run_facets = _facets(run_raw, "facets", "run.")
    run_id = _required(run_raw, "runId", "run.")
    run = _built("run.runId", lambda: Run(runId=run_id, facets=run_facets))
    job = Job(
        namespace=_required(job_raw, "namespace", "job."),
        name=_required(job_raw, "name", "job."),
        facets=_facets(job_raw, "facets", "job."),
    )
    type_raw = raw.get("eventType")
    known = {state.value for state in RunState}
    if type_raw is not None and not (isinstance(type_raw, str) and type_raw in known):
        allowed = ", ".join(state.value for state in RunState)
        raise invalid("eventType", f"must be one of {allowed} (or absent): {type_raw!r}")
    inputs = [
        InputDataset(namespace=d["namespace"], name=d["name"], facets=d.get("facets") or {})
        for d in _datasets(raw, "inputs", "inputFacets")
    ]
    outputs = [
        OutputDataset(namespace=d["namespace"], name=d["name"], facets=d.get("facets") or {})
        for d in _datasets(raw, "outputs", "outputFacets")
    ]
    event = _built(
        "eventTime",
        lambda: RunEvent(
            eventTime=event_time,
            producer=producer,
            eventType=None if type_raw is None else RunState(type_raw),
            run=run,
            job=job,
            inputs=inputs,
            outputs=outputs,
        ),
    )
    _instant(event_time, "eventTime")
    return event


def _nominal_times(facets: JsonObject) -> tuple[datetime | None, datetime | None]:
    raw = facets.get(NOMINAL_TIME)
    if raw is None:
        return None, None
    where = f"run.facets.{NOMINAL_TIME}"
    start = _required(raw, "nominalStartTime", f"{where}.")
    end = _string(raw, "nominalEndTime", f"{where}.", required=False)
    _built(
        where,
        lambda: nominal_time_run.NominalTimeRunFacet(nominalStartTime=start, nominalEndTime=end),
    )
    return (
        _instant(start, f"{where}.nominalStartTime"),
        None if end is None else _instant(end, f"{where}.nominalEndTime"),
    )


def record_command(event: RunEvent) -> RecordRunEvent:
    """What the run keeps of a checked event."""
    facets: JsonObject = dict(event.run.facets or {})
    start, end = _nominal_times(facets)
    return RecordRunEvent(
        run_id=UUID(event.run.runId),
        event_type=None if event.eventType is None else OpenLineageEventType(event.eventType.value),
        event_time=_instant(event.eventTime, "eventTime"),
        job_namespace=event.job.namespace,
        job_name=event.job.name,
        producer=event.producer,
        run_facets=facets,
        nominal_start_time=start,
        nominal_end_time=end,
    )


__all__ = ["INVALID", "NOMINAL_TIME", "invalid", "record_command", "run_event"]
