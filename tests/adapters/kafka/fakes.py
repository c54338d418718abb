"""A consumed record without a broker (what services.adapters.kafka.engine.Record reads)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


__all__ = ["FakeRecord"]
