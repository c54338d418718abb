"""services.service_layer.outbox: the init message derived from an Execution's creation event, and
nothing from any other event (pure: no broker, no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import pytest

from contracts.events import LifecycleEvent
from contracts.route_messages import decode_route_message, init_message_id
from services.service_layer.outbox import outbound_messages

EXECUTION_ID = UUID("01890a5d-ac96-774b-bcce-b302099a8059")
AT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
PAYLOAD = {"url": "https://a", "opts": {"n": 1, "m": 2}}


def created(aggregate_type: str = "Execution", **data: Any) -> LifecycleEvent:
    fields = {
        "owner_kind": "config",
        "init_route": "fetch",
        "init_topic": "fetch.in",
        "init_payload": PAYLOAD,
        "skip_init_message": False,
        **data,
    }
    return LifecycleEvent(
        event_type="Created",
        aggregate_id=str(EXECUTION_ID),
        aggregate_type=aggregate_type,
        version=1,
        time=AT,
        data=fields,
    )


def test_a_config_executions_creation_gives_its_init_message() -> None:
    ((topic, record),) = outbound_messages(created())
    assert topic == "fetch.in"
    assert record.key == str(EXECUTION_ID).encode()
    assert orjson.loads(record.value) == PAYLOAD
    headers = {name: value.decode() for name, value in record.headers}
    assert headers == {
        "ce_specversion": "1.0",
        "ce_id": str(init_message_id(EXECUTION_ID)),
        "ce_source": "/pipelines/routes/init",
        "ce_type": "RouteMessage",
        "ce_time": "2026-03-01T12:00:00.123456Z",
        "content-type": "application/json",
        "ce_executionid": str(EXECUTION_ID),
        "ce_route": "init",
        "ce_stage": "0",
        "ce_correlationid": str(EXECUTION_ID),
    }
    message = decode_route_message(record.value, record.headers)
    assert (message.id, message.execution_id, message.is_init, message.time) == (
        init_message_id(EXECUTION_ID),
        EXECUTION_ID,
        True,
        AT,
    )


def test_the_same_event_gives_the_same_bytes() -> None:
    assert outbound_messages(created()) == outbound_messages(created())


@pytest.mark.parametrize(
    "event",
    [
        created(skip_init_message=True),
        created(init_topic=None),
        created(init_topic=""),
        LifecycleEvent(  # stored before init_topic existed, as the relay reads it
            event_type="Created",
            aggregate_id=str(EXECUTION_ID),
            aggregate_type="Execution",
            version=1,
            time=AT,
            data={"owner_kind": "config", "init_payload": PAYLOAD, "skip_init_message": False},
        ),
        created(owner_kind="pipeline", init_topic=None, init_payload=None),
        created("Config"),
        created().model_copy(update={"event_type": "StatusChanged", "version": 2}),
    ],
    ids=["skipped", "no-topic", "empty-topic", "old-event", "pipeline-run", "config", "later"],
)
def test_nothing_else_gives_a_message(event: LifecycleEvent) -> None:
    assert outbound_messages(event) == []


def test_a_missing_payload_is_an_empty_object() -> None:
    ((_, record),) = outbound_messages(created(init_payload=None))
    assert record.value == b"{}"
