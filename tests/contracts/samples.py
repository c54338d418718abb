"""One fully populated instance of every command (non-default values wherever a field
allows), and the Kafka key each must have. Adding a command without a sample here
fails the coverage test."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from contracts import commands as c
from contracts.openlineage_commands import OpenLineageEventType
from contracts.statuses import (
    BootstrapPolicy,
    InitialStatus,
    ReplaySource,
    RunStatus,
    RuntimeStatus,
)

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
SAMPLES: list[tuple[c.Command, str | None]] = [
    (c.CreatePipeline(name="orders", description="d", config_id=CONFIG_ID), "orders"),
    (
        c.UpdatePipeline(
            pipeline_name="orders", name="orders-v2", description="e", config_id=OTHER_CONFIG_ID
        ),
        "orders",
    ),
    (c.DeletePipeline(pipeline_name="orders"), "orders"),
    (
        c.StartPipeline(
            pipeline_name="orders",
            initial=InitialStatus.STANDBY,
            bootstrap_policy=BootstrapPolicy.REJECT,
            dismiss_error=False,
        ),
        "orders",
    ),
    (c.StopPipeline(pipeline_name="orders", force=True), "orders"),
    (c.PausePipeline(pipeline_name="orders"), "orders"),
    (c.ResumePipeline(pipeline_name="orders"), "orders"),
    (c.ActivatePipeline(pipeline_name="orders"), "orders"),
    (c.CheckpointPipeline(pipeline_name="orders"), "orders"),
    (c.ApprovePipeline(pipeline_name="orders"), "orders"),
    (c.DismissPipelineError(pipeline_name="orders"), "orders"),
    (c.ClearPipelineStorage(pipeline_name="orders"), "orders"),
    (c.CreateConfig(config_id=CONFIG_ID, name="cfg", document=DOCUMENT), str(CONFIG_ID)),
    (c.UpdateConfig(config_id=CONFIG_ID, document=YAML_DOCUMENT, name="cfg2"), str(CONFIG_ID)),
    (c.DeleteConfig(config_id=CONFIG_ID), str(CONFIG_ID)),
    (c.ValidateConfig(document=YAML_DOCUMENT), None),
    (
        c.RunConfig(
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
    (c.CreateRun(pipeline_id="orders", run_id=RUN_ID, args={"retries": "1"}), "orders"),
    (c.StartRun(run_id=RUN_ID, at=AT), str(RUN_ID)),
    (c.CompleteRun(run_id=RUN_ID, at=AT), str(RUN_ID)),
    (c.FailRun(run_id=RUN_ID, at=AT), str(RUN_ID)),
    (c.AbortRun(run_id=RUN_ID, at=AT), str(RUN_ID)),
    (
        c.UpdateRunStatus(run_id=RUN_ID, status=RunStatus.CANCELLED, at=AT, pipeline_id="orders"),
        str(RUN_ID),
    ),
    (c.CancelExecution(execution_id=EXECUTION_ID), str(EXECUTION_ID)),
    (c.ReplayExecution(parent=str(EXECUTION_ID), from_stage="enrich"), str(EXECUTION_ID)),
    (c.DeleteRun(run_id=RUN_ID, pipeline_id="orders"), str(RUN_ID)),
    (
        c.RecordRunEvent(
            run_id=RUN_ID,
            event_type=OpenLineageEventType.COMPLETE,
            event_time=AT,
            job_namespace="airflow",
            job_name="daily-orders",
            producer="https://example.com/producer",
            run_facets={"nominalTime": {"nominalStartTime": "2019-05-09T15:00:00Z"}},
            nominal_start_time=AT,
            nominal_end_time=AT,
        ),
        str(RUN_ID),
    ),
    (
        c.DecideExecution(
            execution_id=EXECUTION_ID,
            decision=c.ExecutionDecision.FAIL,
            expected_version=7,
            reason="route 'fetch' dead-lettered a message",
            at=AT,
        ),
        str(EXECUTION_ID),
    ),
    (
        c.ReportStageProgress(
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
        c.ReconcilePipeline(
            pipeline_name="orders",
            pipeline_id=EXECUTION_ID,
            step=c.ReconcileStep.RUNTIME_STATUS,
            deployment_id=RUN_ID,
            runtime_status=RuntimeStatus.RUNNING,
            expected_version=4,
            at=AT,
        ),
        "orders",
    ),
]
