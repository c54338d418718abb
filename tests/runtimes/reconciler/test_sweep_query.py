"""`ReadStore.pipelines_not_at_rest()`, the reconciler's sweep query, on SQLite and
PostgreSQL: pipelines taken through their statuses by the real decider and projected."""

from __future__ import annotations

from uuid import UUID, uuid4

from contracts import CreateConfig, CreatePipeline, DeletePipeline, StartPipeline, StopPipeline
from contracts.reconciler_commands import ReconcilePipeline, ReconcileStep
from projections.projector import Projector
from projections.store import ReadStore
from services.service_layer.decider import Decider
from tests.projections.support import events_of
from tests.service_layer.decider_support import (
    accepted,
    config_document,
    decide,
    opened_decider,
    stored_pipeline,
)


def reconcile(
    decider: Decider, name: str, step: ReconcileStep, deployment_id: UUID | None = None
) -> None:
    pipeline = stored_pipeline(decider.store, name)
    command = ReconcilePipeline(
        pipeline_name=name,
        pipeline_id=pipeline.id,
        step=step,
        deployment_id=deployment_id or pipeline.deployment_id,
        expected_version=pipeline.version,
    )
    accepted(decide(decider, command)[0])


def test_the_sweep_reads_every_pipeline_not_at_rest(store_url: str) -> None:
    with opened_decider(store_url) as decider:
        config = CreateConfig(name="c", document=config_document())
        names = ["at-rest", "desired", "provisioning", "running", "stopping", "back", "gone"]
        decide(
            decider,
            config,
            *(CreatePipeline(name=n, config_id=config.config_id) for n in names),
            *(StartPipeline(pipeline_name=n) for n in names[1:]),
        )
        for name in names[2:]:
            reconcile(decider, name, ReconcileStep.BEGIN_PROVISIONING, deployment_id=uuid4())
        for name in names[3:]:
            reconcile(decider, name, ReconcileStep.PROVISIONED)
        for name in names[4:]:
            decide(decider, StopPipeline(pipeline_name=name, force=True))
            reconcile(decider, name, ReconcileStep.BEGIN_STOPPING)
        for name in names[5:]:
            reconcile(decider, name, ReconcileStep.STOPPED)
        decide(decider, DeletePipeline(pipeline_name="gone"))
        with ReadStore(store_url) as read_store:
            Projector(read_store).apply_batch(events_of(decider.store))
            found = [row["name"] for row in read_store.pipelines_not_at_rest()]
            assert found == ["desired", "provisioning", "running", "stopping"]
            row = read_store.pipelines_not_at_rest()[2]
            assert row == read_store.get_pipeline("running")
