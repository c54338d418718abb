"""Command type -> handler: the whole dispatch, in one table.

Every command of `contracts.COMMANDS` has exactly one handler (a test checks it).
"""

from __future__ import annotations

from typing import Final

from contracts import (
    AbortRun,
    ApprovePipeline,
    CancelExecution,
    CheckpointPipeline,
    ClearPipelineStorage,
    Command,
    CompleteRun,
    CreateConfig,
    CreatePipeline,
    CreateRun,
    DeletePipeline,
    DeleteRun,
    DismissPipelineError,
    FailRun,
    PausePipeline,
    ResumePipeline,
    RunConfig,
    StartPipeline,
    StartRun,
    StopPipeline,
    UpdateConfig,
    UpdatePipeline,
    UpdateRunStatus,
    ValidateConfig,
)
from contracts.orchestrator_commands import DecideExecution, ReportStageProgress
from contracts.reconciler_commands import ReconcilePipeline
from services.service_layer.handlers import configs as config
from services.service_layer.handlers import execution_decisions as orchestrator
from services.service_layer.handlers import pipeline_steps as reconciler
from services.service_layer.handlers import pipelines as pipeline
from services.service_layer.handlers import runs as run
from services.service_layer.handling import Handler

HANDLERS: Final[dict[type[Command], Handler]] = {
    # pipelines (seeds 000, 001)
    CreatePipeline: pipeline.create_pipeline,
    UpdatePipeline: pipeline.update_pipeline,
    DeletePipeline: pipeline.delete_pipeline,
    StartPipeline: pipeline.start_pipeline,
    StopPipeline: pipeline.stop_pipeline,
    PausePipeline: pipeline.pause_pipeline,
    ResumePipeline: pipeline.resume_pipeline,
    CheckpointPipeline: pipeline.checkpoint_pipeline,
    ApprovePipeline: pipeline.approve_pipeline,
    DismissPipelineError: pipeline.dismiss_pipeline_error,
    ClearPipelineStorage: pipeline.clear_pipeline_storage,
    # configs and their executions (seed 004)
    CreateConfig: config.create_config,
    UpdateConfig: config.update_config,
    ValidateConfig: config.validate_config_document,
    RunConfig: config.run_config,
    # runs (seeds 002, 003) and executions (seed 004)
    CreateRun: run.create_run,
    StartRun: run.start_run,
    CompleteRun: run.complete_run,
    FailRun: run.fail_run,
    AbortRun: run.abort_run,
    UpdateRunStatus: run.update_run_status,
    CancelExecution: run.cancel_execution,
    DeleteRun: run.delete_run,
    # the orchestrator's decisions and progress reports (issue 5)
    DecideExecution: orchestrator.decide_execution,
    ReportStageProgress: orchestrator.report_stage_progress,
    # the reconciler's steps (issue 6)
    ReconcilePipeline: reconciler.reconcile_pipeline,
}
