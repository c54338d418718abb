"""Which events wake the reconciler's sweep (services.runtimes.reconciler.wake); that a wake-up
really brings a start forward is tests/runtimes/reconciler/test_lifecycle.py's
test_events_wake_the_reconciler_before_its_next_tick."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from contracts.cloudevents import encode_event
from contracts.events import LifecycleEvent
from services.runtimes.reconciler.wake import _pipeline_of, wake_group
from services.settings import Settings


def event(aggregate_type: str, aggregate_id: str) -> LifecycleEvent:
    return LifecycleEvent(
        event_type="StartRequested",
        aggregate_id=aggregate_id,
        aggregate_type=aggregate_type,
        version=2,
        time=datetime.now(UTC),
    )


def test_a_pipeline_event_wakes_its_pipeline() -> None:
    pipeline_id = uuid4()
    record = encode_event(event("Pipeline", str(pipeline_id)))
    assert _pipeline_of(record.value, list(record.headers)) == pipeline_id


def test_other_events_and_unreadable_records_wake_nothing() -> None:
    config = encode_event(event("Config", str(uuid4())))
    assert _pipeline_of(config.value, list(config.headers)) is None
    odd_id = encode_event(event("Pipeline", "not-a-uuid"))
    assert _pipeline_of(odd_id.value, list(odd_id.headers)) is None
    pipeline = encode_event(event("Pipeline", str(uuid4())))
    assert _pipeline_of(b"{not json", list(pipeline.headers)) is None
    assert _pipeline_of(pipeline.value, []) is None  # no CloudEvents headers
    assert _pipeline_of(None, list(pipeline.headers)) is None


def test_the_wake_up_group_is_the_services_own() -> None:
    settings = Settings(consumer_group="svc")
    assert wake_group(settings) == "svc.reconciler-wake"
