"""Pipeline commands: Feldera's pipeline endpoints (seeds 000 and 001) as messages.

A pipeline's program is a config document (contracts.config_document): named by
`config_id` (a Config of its own), or given as Feldera's `program_code`, YAML or JSON
text, which becomes a config the pipeline owns (docs/pipeline-lifecycle.md, "Feldera's
SDK"). The other fields of Feldera's pipeline body (`udf_rust`, `udf_toml`,
`program_config`, `runtime_config`, `tags`) are kept and answered back as given; nothing
here interprets them.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.command_base import Command, PipelineCommand, PipelineName
from contracts.statuses import BootstrapPolicy, InitialStatus, RuntimeDesiredStatus

JsonObject = dict[str, Any]

PROGRAM_CODE_DESCRIPTION = (
    "The program: a config document as YAML or JSON text (it becomes a config the "
    "pipeline owns); give this or `config_id`"
)


class CreatePipeline(Command):
    """A new pipeline; its program is the Config `config_id` names, or `program_code`."""

    name: PipelineName
    description: str = ""
    config_id: UUID | None = None
    program_code: str | None = Field(default=None, description=PROGRAM_CODE_DESCRIPTION)
    udf_rust: str = ""
    udf_toml: str = ""
    program_config: JsonObject = Field(default_factory=dict)
    runtime_config: JsonObject = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)

    def key(self) -> str:
        return self.name


class PipelineFields(BaseModel):
    """Feldera's pipeline body (PostPutPipeline, PatchPipeline) as an edit: a field left
    `None` keeps its value. UpdatePipeline carries these, and the HTTP bodies
    (services.entrypoints.http.pipelines) are these, so each field is written once."""

    model_config = ConfigDict(extra="forbid")

    name: PipelineName | None = None
    description: str | None = None
    config_id: UUID | None = None
    program_code: str | None = Field(default=None, description=PROGRAM_CODE_DESCRIPTION)
    udf_rust: str | None = None
    udf_toml: str | None = None
    program_config: JsonObject | None = None
    runtime_config: JsonObject | None = None
    tags: list[str] | None = None


# PipelineFields first: its fields follow `pipeline_name`, and the command's config
# (frozen) is merged over its own.
class UpdatePipeline(PipelineFields, PipelineCommand):
    """Edit a pipeline (Feldera's PATCH); a field left `None` keeps its value. A new `name`
    renames it. With `create_if_missing` (Feldera's PUT) a pipeline of that name that does
    not exist is created from the fields given, named `name` or `pipeline_name`."""

    create_if_missing: bool = False


class DeletePipeline(PipelineCommand):
    pass


class StartPipeline(PipelineCommand):
    """`/start?initial=&bootstrap_policy=&dismiss_error=` with Feldera's defaults."""

    initial: InitialStatus = InitialStatus.RUNNING
    bootstrap_policy: BootstrapPolicy = BootstrapPolicy.AWAIT_APPROVAL
    dismiss_error: bool = True


class StopPipeline(PipelineCommand):
    """`/stop?force=`: `force=False` checkpoints (suspends) first, `True` stops at once."""

    force: bool = Field(default=False)


class PausePipeline(PipelineCommand):
    pass


class ResumePipeline(PipelineCommand):
    pass


class ActivatePipeline(PipelineCommand):
    """`/activate?initial=`: leave Standby (or Paused) for `initial`, Running or Paused."""

    initial: RuntimeDesiredStatus = RuntimeDesiredStatus.RUNNING


class CheckpointPipeline(PipelineCommand):
    pass


class ApprovePipeline(PipelineCommand):
    """Approve the bootstrap of a pipeline that is `AwaitingApproval`."""


class DismissPipelineError(PipelineCommand):
    pass


class ClearPipelineStorage(PipelineCommand):
    """`/clear`: drop the pipeline's stored state (only while stopped)."""
