"""Timestamps in read-model rows: ISO-8601 text, parsed only where rows compare times.

Rows hold `iso()` text (UTC, `Z`, as the seed replies print it). Columns that SQL sorts on
hold `sort_key()` text instead, fixed width, so text order is time order on both SQLite
and PostgreSQL (ISO text with and without fractions does not sort).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter

_DURATION = TypeAdapter(timedelta)


def parse(value: str | datetime) -> datetime:
    """Naive values are taken as UTC, as the domain does."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso(value: str | datetime | None) -> str | None:
    if value is None:
        return None
    return parse(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


def sort_key(value: str | datetime | None) -> str | None:
    if value is None:
        return None
    return parse(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def latest(first: str | None, second: str | None) -> str | None:
    """The later of two row timestamps (either may be missing)."""
    if first is None or second is None:
        return first if second is None else second
    return first if parse(first) >= parse(second) else second


def duration(value: str | float | timedelta) -> timedelta:
    """An event's `timedelta` field as published (ISO-8601 duration, e.g. `P21D`)."""
    return _DURATION.validate_python(value)
