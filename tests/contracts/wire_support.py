"""What the wire tests read off a record: header names in wire order, headers as text,
and a record's headers with some replaced."""

from __future__ import annotations

from contracts.envelope import KafkaRecord

# The attributes every message of ours carries first, in this order.
CORE_HEADERS = [
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "content-type",
]
COMMAND_HEADERS = [*CORE_HEADERS, "ce_correlationid", "ce_causationid"]
EVENT_HEADERS = [*CORE_HEADERS, "ce_subject", "ce_sequence", "ce_correlationid", "ce_causationid"]


def headers_of(record: KafkaRecord) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def with_headers(record: KafkaRecord, **changes: str | None) -> list[tuple[str, bytes]]:
    """The record's headers with some replaced (`None` removes one)."""
    names = {("content-type" if n == "content_type" else n): v for n, v in changes.items()}
    kept = [(n, v) for n, v in record.headers if n not in names]
    return kept + [(n, v.encode()) for n, v in names.items() if v is not None]
