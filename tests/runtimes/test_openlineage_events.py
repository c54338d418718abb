"""The RunEvents one status change is (services.runtimes.openlineage.run_events), without a
stack: which events each status gives, the datasets of the README's example config, the
Kafka key next to the client's own KafkaTransport's, and the same bytes every time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from openlineage.client.event_v2 import RunState
from openlineage.client.transport.kafka import KafkaTransport

from contracts.run_views import STARTED, TERMINAL
from contracts.statuses import RunStatus
from services.runtimes.openlineage.run_events import (
    JobRef,
    RunFacts,
    RunRef,
    StatusChange,
    boundary_topics,
    kinds,
    run_events,
)
from services.runtimes.openlineage.sinks import message_key, serialized

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "orders.yaml"
AT = datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
JOB = JobRef("pipelines", "orders")
FACTS = RunFacts(
    run_id=UUID("01890a5d-ac96-774b-bcce-b302099a8059"),
    job=JOB,
    job_type="CONFIG_EXECUTION",
    dataset_namespace="kafka://broker:9092",
    inputs=("orders.incoming",),
    outputs=("orders.done",),
    parent=RunRef(UUID("01890a5d-ac96-774b-bcce-b302099a805a"), JOB),
    root=RunRef(UUID("01890a5d-ac96-774b-bcce-b302099a805b"), JobRef("pipelines", "root")),
)

END = {
    RunStatus.SUCCESS: RunState.COMPLETE,
    RunStatus.FAILURE: RunState.FAIL,
    RunStatus.TIMEOUT: RunState.FAIL,
    RunStatus.INVALID: RunState.FAIL,
    RunStatus.CANCELLED: RunState.ABORT,
    RunStatus.INTERRUPTED: RunState.ABORT,
}


@pytest.mark.parametrize("status", list(RunStatus))
@pytest.mark.parametrize("had_started", [False, True])
def test_each_status_gives_its_events(status: RunStatus, had_started: bool) -> None:
    expected = [] if had_started or status not in STARTED | TERMINAL else [RunState.START]
    expected += [END[status]] if status in TERMINAL else []
    assert kinds(StatusChange(status, AT, had_started)) == expected


def test_the_examples_datasets_are_its_topics_in_and_out() -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    assert boundary_topics(document) == (
        ("example.orders.incoming",),
        ("example.orders.dead-letters", "example.orders.done"),
    )


def test_the_kafka_key_is_the_clients_for_a_replay_and_a_plain_run() -> None:
    client = KafkaTransport.__new__(KafkaTransport)  # its producer needs confluent-kafka
    plain = RunFacts(FACTS.run_id, JOB, "PIPELINE_RUN", "kafka://broker:9092")
    for facts in (FACTS, plain):
        (event,) = run_events(facts, StatusChange(RunStatus.SUCCESS, AT, True))
        assert message_key(event) == client._get_message_key(event)
    assert message_key(run_events(FACTS, StatusChange(RunStatus.RUNNING, AT, False))[0]) == (
        "run:pipelines/root"
    )


def test_the_same_change_is_the_same_bytes() -> None:
    change = StatusChange(RunStatus.FAILURE, AT, False, reason="route 'enrich' failed")
    first = [serialized(e) for e in run_events(FACTS, change)]
    assert first == [serialized(e) for e in run_events(FACTS, change)]
    start, fail = run_events(FACTS, change)
    assert (start.eventTime, fail.eventTime) == ("2026-01-02T03:04:05.250000Z",) * 2
    assert fail.run.facets is not None
    assert fail.run.facets["errorMessage"].message == "route 'enrich' failed"
    assert start.run.facets is not None and "errorMessage" not in start.run.facets
