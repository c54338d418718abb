"""One fully populated instance of every command (non-default values wherever a field
allows), and the Kafka key each must have. Adding a command without a sample here
fails the coverage test."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from contracts import (
    AbortRun,
    ApprovePipeline,
    BootstrapPolicy,
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
    InitialStatus,
    PausePipeline,
    ReplaySource,
    ResumePipeline,
    RunConfig,
    RunStatus,
    StartPipeline,
    StartRun,
    StopPipeline,
    UpdateConfig,
    UpdatePipeline,
    UpdateRunStatus,
    ValidateConfig,
)
from contracts.orchestrator_commands import (
    DecideExecution,
    ExecutionDecision,
    ReportStageProgress,
)
from contracts.reconciler_commands import ReconcilePipeline, ReconcileStep
from contracts.statuses import RuntimeStatus

CONFIG_ID = UUID("01890a5d-ac96-774b-bcce-b302099a8057")
OTHER_CONFIG_ID = UUID("01890a5d-ac96-774b-bcce-b302099a8058")
EXECUTION_ID = UUID("01890a5d-ac96-774b-bcce-b302099a8059")
PARENT_ID = UUID("01890a5d-ac96-774b-bcce-b302099a805a")
RUN_ID = UUID("870492da-ecfb-4be0-91b9-9a89ddd3db90")  # seed 002's run
AT = datetime(2019, 5, 9, 15, 17, 32, 690346, tzinfo=UTC)

DOCUMENT = {
    "version": "1.0",
    "routes": {"ingest": {"name": "Ingest", "inbound": {"topic": "in"}, "outbound": ["out"]}},
    "init_message": {"route": "ingest", "payload": {"url": "https://example.com"}},
}
YAML_DOCUMENT = "version: '1.0'\nroutes: {}\ninit_message: {route: a}\n"

# (command, expected key)
SAMPLES: list[tuple[Command, str | None]] = [
    (CreatePipeline(name="orders", description="d", config_id=CONFIG_ID), "orders"),
    (
        UpdatePipeline(
            pipeline_name="orders", name="orders-v2", description="e", config_id=OTHER_CONFIG_ID
        ),
        "orders",
    ),
    (DeletePipeline(pipeline_name="orders"), "orders"),
    (
        StartPipeline(
            pipeline_name="orders",
            initial=InitialStatus.STANDBY,
            bootstrap_policy=BootstrapPolicy.REJECT,
            dismiss_error=False,
        ),
        "orders",
    ),
    (StopPipeline(pipeline_name="orders", force=True), "orders"),
    (PausePipeline(pipeline_name="orders"), "orders"),
    (ResumePipeline(pipeline_name="orders"), "orders"),
    (CheckpointPipeline(pipeline_name="orders"), "orders"),
    (ApprovePipeline(pipeline_name="orders"), "orders"),
    (DismissPipelineError(pipeline_name="orders"), "orders"),
    (ClearPipelineStorage(pipeline_name="orders"), "orders"),
    (CreateConfig(config_id=CONFIG_ID, name="cfg", document=DOCUMENT), str(CONFIG_ID)),
    (UpdateConfig(config_id=CONFIG_ID, document=YAML_DOCUMENT, name="cfg2"), str(CONFIG_ID)),
    (ValidateConfig(document=YAML_DOCUMENT), None),
    (
        RunConfig(
            config_id=CONFIG_ID,
            execution_id=EXECUTION_ID,
            skip_init_message=True,
            tag="nightly-1",
            init_payload_overrides={"url": "https://example.org", "depth": {"max": 2}},
            parent_execution_id=PARENT_ID,
            replay_source=ReplaySource.STORAGE,
        ),
        str(CONFIG_ID),
    ),
    (CreateRun(pipeline_id="orders", run_id=RUN_ID, args={"retries": "1"}), "orders"),
    (StartRun(run_id=RUN_ID, at=AT), str(RUN_ID)),
    (CompleteRun(run_id=RUN_ID, at=AT), str(RUN_ID)),
    (FailRun(run_id=RUN_ID, at=AT), str(RUN_ID)),
    (AbortRun(run_id=RUN_ID, at=AT), str(RUN_ID)),
    (
        UpdateRunStatus(run_id=RUN_ID, status=RunStatus.CANCELLED, at=AT, pipeline_id="orders"),
        str(RUN_ID),
    ),
    (CancelExecution(execution_id=EXECUTION_ID), str(EXECUTION_ID)),
    (DeleteRun(run_id=RUN_ID, pipeline_id="orders"), str(RUN_ID)),
    (
        DecideExecution(
            execution_id=EXECUTION_ID,
            decision=ExecutionDecision.FAIL,
            expected_version=7,
            reason="route 'fetch' dead-lettered a message",
            at=AT,
        ),
        str(EXECUTION_ID),
    ),
    (
        ReportStageProgress(
            execution_id=EXECUTION_ID,
            route="fetch",
            messages_in=3,
            messages_out=5,
            messages_failed=1,
            finished=RunStatus.FAILURE,
            at=AT,
        ),
        str(EXECUTION_ID),
    ),
    (
        ReconcilePipeline(
            pipeline_name="orders",
            pipeline_id=EXECUTION_ID,
            step=ReconcileStep.RUNTIME_STATUS,
            deployment_id=RUN_ID,
            runtime_status=RuntimeStatus.RUNNING,
            expected_version=4,
            at=AT,
        ),
        "orders",
    ),
]
