"""RecordRunEvent: an OpenLineage RunEvent received on `POST /api/v1/lineage` (Marquez's
lineage endpoint), as the command that applies it to the run it names.

The HTTP layer validates the event (services.entrypoints.http.openlineage_body) and sends
only what the run keeps: the run id is the key, `event_time` the transition's time, the
job's namespace and name, the producer and the run facets of the event. Datasets and job
facets are not kept (docs/lineage.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from contracts.run_commands import RunCommand


class OpenLineageEventType(StrEnum):
    """The spec's `eventType` (absent is allowed too: the command's None)."""

    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ABORT = "ABORT"
    FAIL = "FAIL"
    OTHER = "OTHER"


class RecordRunEvent(RunCommand):
    """Apply one OpenLineage RunEvent to run `run_id`, creating the run if it is new."""

    event_type: OpenLineageEventType | None = None
    event_time: AwareDatetime = Field(description="The event's eventTime")
    job_namespace: str = Field(min_length=1)
    job_name: str = Field(min_length=1)
    producer: str = Field(min_length=1)
    run_facets: dict[str, Any] = Field(default_factory=dict)
    nominal_start_time: AwareDatetime | None = None
    nominal_end_time: AwareDatetime | None = None


__all__ = ["OpenLineageEventType", "RecordRunEvent"]
