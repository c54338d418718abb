"""Run and execution commands: seed 002 (Marquez run verbs), seed 003 (Esper pipeline
runs) and seed 004 (FactFlow execution cancel). All act on one Execution aggregate.

`at` is when the transition happened (seed 002's `?at=`); `None` means when the
command is handled. `run_id` defaults to a fresh UUIDv7 that the encoder always
writes, so a re-sent CreateRun names the same run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BeforeValidator, Field, WithJsonSchema

from contracts.command_base import Command, new_id
from contracts.statuses import RunStatus


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in word)


# Esper's spec lists lower-case statuses while its CLI sends upper-case ones: take any case.
AnyCaseRunStatus = Annotated[
    RunStatus,
    BeforeValidator(_lower),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^(" + "|".join(_any_case(s.value) for s in RunStatus) + ")$",
            "description": "A RunStatus in any letter case: " + ", ".join(RunStatus),
        }
    ),
]


class CreateRun(Command):
    """Seed 003 `POST /pipelines/{pipeline_id}/runs`: a new run of a pipeline.

    `pipeline_id` is the pipeline's id or its name, and is the key: runs of one
    pipeline are numbered in the order they were sent.
    """

    pipeline_id: str = Field(min_length=1)
    run_id: UUID = Field(default_factory=new_id)
    args: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> str:
        return self.pipeline_id


class RunCommand(Command):
    run_id: UUID

    def key(self) -> str:
        return str(self.run_id)


class RunTransition(RunCommand):
    at: datetime | None = None


class StartRun(RunTransition):
    """Seed 002 `POST /jobs/runs/{id}/start?at=`: mark the run RUNNING."""


class CompleteRun(RunTransition):
    """Seed 002 `.../complete`: mark the run COMPLETED."""


class FailRun(RunTransition):
    """Seed 002 `.../fail`: mark the run FAILED."""


class AbortRun(RunTransition):
    """Seed 002 `.../abort`: mark the run ABORTED."""


class UpdateRunStatus(RunTransition):
    """Seed 003 `PUT /pipelines/{pipeline_id}/runs/{run_id}` with body `{status}`.

    `pipeline_id` (optional) is the path's pipeline id or name: when given, a run that
    does not belong to it is reported unknown.
    """

    status: AnyCaseRunStatus
    pipeline_id: str | None = Field(default=None, min_length=1)


class DeleteRun(RunCommand):
    """Seed 003 `DELETE /pipelines/{pipeline_id}/runs/{run_id}`."""

    pipeline_id: str | None = Field(default=None, min_length=1)


class CancelExecution(Command):
    """Seed 004's product, `POST /executions/{id}/cancel`."""

    execution_id: UUID

    def key(self) -> str:
        return str(self.execution_id)
