"""Pipeline commands: Feldera's pipeline endpoints (seeds 000 and 001) as messages."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from contracts.command_base import Command, PipelineCommand, PipelineName
from contracts.statuses import BootstrapPolicy, InitialStatus


class CreatePipeline(Command):
    """A new pipeline; `config_id` names the Config that is its program."""

    name: PipelineName
    description: str = ""
    config_id: UUID | None = None

    def key(self) -> str:
        return self.name


class UpdatePipeline(PipelineCommand):
    """Edit a pipeline; a field left `None` keeps its value. A new `name` renames it."""

    name: PipelineName | None = None
    description: str | None = None
    config_id: UUID | None = None


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


class CheckpointPipeline(PipelineCommand):
    pass


class ApprovePipeline(PipelineCommand):
    """Approve the bootstrap of a pipeline that is `AwaitingApproval`."""


class DismissPipelineError(PipelineCommand):
    pass


class ClearPipelineStorage(PipelineCommand):
    """`/clear`: drop the pipeline's stored state (only while stopped)."""
