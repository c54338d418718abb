"""Command type -> handler: the whole dispatch, in one table.

Every command of `contracts.COMMANDS` has exactly one handler (a test checks it).
"""

from __future__ import annotations

from typing import Final

from contracts import commands as c
from services.service_layer.handlers import configs as config
from services.service_layer.handlers import execution_decisions as orchestrator
from services.service_layer.handlers import openlineage
from services.service_layer.handlers import pipeline_steps as reconciler
from services.service_layer.handlers import pipelines as pipeline
from services.service_layer.handlers import replays as replay
from services.service_layer.handlers import runs as run
from services.service_layer.handling import Handler

HANDLERS: Final[dict[type[c.Command], Handler]] = {
    # pipelines (seeds 000, 001)
    c.CreatePipeline: pipeline.create_pipeline,
    c.UpdatePipeline: pipeline.update_pipeline,
    c.DeletePipeline: pipeline.delete_pipeline,
    c.StartPipeline: pipeline.start_pipeline,
    c.StopPipeline: pipeline.stop_pipeline,
    c.PausePipeline: pipeline.pause_pipeline,
    c.ResumePipeline: pipeline.resume_pipeline,
    c.ActivatePipeline: pipeline.activate_pipeline,
    c.CheckpointPipeline: pipeline.checkpoint_pipeline,
    c.ApprovePipeline: pipeline.approve_pipeline,
    c.DismissPipelineError: pipeline.dismiss_pipeline_error,
    c.ClearPipelineStorage: pipeline.clear_pipeline_storage,
    # configs and their executions (seed 004)
    c.CreateConfig: config.create_config,
    c.UpdateConfig: config.update_config,
    c.DeleteConfig: config.delete_config,
    c.ValidateConfig: config.validate_config_document,
    c.RunConfig: config.run_config,
    # runs (seeds 002, 003) and executions (seed 004)
    c.CreateRun: run.create_run,
    c.StartRun: run.start_run,
    c.CompleteRun: run.complete_run,
    c.FailRun: run.fail_run,
    c.AbortRun: run.abort_run,
    c.UpdateRunStatus: run.update_run_status,
    c.CancelExecution: run.cancel_execution,
    c.DeleteRun: run.delete_run,
    c.ReplayExecution: replay.replay_execution,
    # OpenLineage RunEvents (POST /api/v1/lineage, docs/lineage.md)
    c.RecordRunEvent: openlineage.record_run_event,
    # the orchestrator's decisions and progress reports (issue 5)
    c.DecideExecution: orchestrator.decide_execution,
    c.ReportStageProgress: orchestrator.report_stage_progress,
    # the reconciler's steps (issue 6)
    c.ReconcilePipeline: reconciler.reconcile_pipeline,
}
