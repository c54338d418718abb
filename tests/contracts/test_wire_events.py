"""The CloudEvents binary-mode wire format of published domain events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import LifecycleEvent, WireError, WireErrorCode, decode_event, encode_event, event_id
from tests.contracts.wire_support import EVENT_HEADERS, headers_of

EVENT = LifecycleEvent(
    event_type="StartRequested",
    aggregate_id="01890a5d-ac96-774b-bcce-b302099a8057",
    aggregate_type="Pipeline",
    version=4,
    time=datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
    data={"initial": "running", "nested": {"n": [1, 2]}},
)


def test_event_headers_name_subject_and_sequence() -> None:
    record = encode_event(EVENT, correlation_id="corr", causation_id="cmd")
    assert [n for n, _ in record.headers] == EVENT_HEADERS
    headers = headers_of(record)
    assert headers["ce_id"] == event_id(EVENT.aggregate_id, 4) == EVENT.event_id
    assert headers["ce_type"] == "StartRequested"
    assert headers["ce_subject"] == EVENT.aggregate_id
    assert headers["ce_sequence"] == "4"
    assert headers["ce_time"] == "2026-03-01T08:00:00.000000Z"
    assert record.key == EVENT.aggregate_id.encode()


def test_event_round_trips_and_re_encodes_identically() -> None:
    record = encode_event(EVENT)
    assert record == encode_event(EVENT)  # the relay may publish an event twice
    decoded = decode_event(record.value, record.headers)
    assert decoded.event == EVENT
    assert decoded.attributes.sequence == "4"
    assert decoded.attributes.time == EVENT.time


def test_event_decode_refuses_a_bad_body() -> None:
    record = encode_event(EVENT)
    with pytest.raises(WireError) as caught:
        decode_event(b'{"event_type": "X"}', record.headers)
    assert caught.value.error_code is WireErrorCode.MALFORMED_MESSAGE
    assert caught.value.details["errors"]
