"""Every command and the registry that maps a wire name (`ce_type`) to its model.

The base class lives in `contracts.command_base` and the families in
`pipeline_commands`, `config_commands`, `run_commands`, `replay_commands`,
`openlineage_commands`, `orchestrator_commands` and `reconciler_commands`; this module is
the one place that lists them all.
"""

from __future__ import annotations

from contracts.command_base import Command, PipelineCommand, new_id
from contracts.config_commands import (
    CreateConfig,
    DeleteConfig,
    RunConfig,
    UpdateConfig,
    ValidateConfig,
)
from contracts.openlineage_commands import RecordRunEvent
from contracts.orchestrator_commands import (
    DecideExecution,
    ExecutionDecision,
    ReportStageProgress,
    decision_command_id,
)
from contracts.pipeline_commands import (
    ActivatePipeline,
    ApprovePipeline,
    CheckpointPipeline,
    ClearPipelineStorage,
    CreatePipeline,
    DeletePipeline,
    DismissPipelineError,
    PausePipeline,
    ResumePipeline,
    StartPipeline,
    StopPipeline,
    UpdatePipeline,
)
from contracts.reconciler_commands import ReconcilePipeline, ReconcileStep, reconcile_command_id
from contracts.replay_commands import ReplayExecution
from contracts.run_commands import (
    AbortRun,
    CancelExecution,
    CompleteRun,
    CreateRun,
    DeleteRun,
    FailRun,
    StartRun,
    UpdateRunStatus,
)

_ALL: tuple[type[Command], ...] = (
    # pipelines
    CreatePipeline,
    UpdatePipeline,
    DeletePipeline,
    StartPipeline,
    StopPipeline,
    PausePipeline,
    ResumePipeline,
    ActivatePipeline,
    CheckpointPipeline,
    ApprovePipeline,
    DismissPipelineError,
    ClearPipelineStorage,
    # configs
    CreateConfig,
    UpdateConfig,
    DeleteConfig,
    ValidateConfig,
    RunConfig,
    # runs and executions
    CreateRun,
    StartRun,
    CompleteRun,
    FailRun,
    AbortRun,
    UpdateRunStatus,
    CancelExecution,
    DeleteRun,
    ReplayExecution,
    RecordRunEvent,
    # the orchestrator's decisions and reports
    DecideExecution,
    ReportStageProgress,
    # the reconciler's steps
    ReconcilePipeline,
)

COMMANDS: dict[str, type[Command]] = {cls.command_type(): cls for cls in _ALL}
"""Wire name -> model: the only way a message's `ce_type` becomes a command."""

__all__ = [
    "COMMANDS",
    "AbortRun",
    "ActivatePipeline",
    "ApprovePipeline",
    "CancelExecution",
    "CheckpointPipeline",
    "ClearPipelineStorage",
    "Command",
    "CompleteRun",
    "CreateConfig",
    "CreatePipeline",
    "CreateRun",
    "DecideExecution",
    "DeleteConfig",
    "DeletePipeline",
    "DeleteRun",
    "DismissPipelineError",
    "ExecutionDecision",
    "FailRun",
    "PausePipeline",
    "PipelineCommand",
    "ReconcilePipeline",
    "ReconcileStep",
    "RecordRunEvent",
    "ReplayExecution",
    "ReportStageProgress",
    "ResumePipeline",
    "RunConfig",
    "StartPipeline",
    "StartRun",
    "StopPipeline",
    "UpdateConfig",
    "UpdatePipeline",
    "UpdateRunStatus",
    "ValidateConfig",
    "decision_command_id",
    "new_id",
    "reconcile_command_id",
]
