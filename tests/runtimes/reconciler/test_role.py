"""The `reconciler` role as `pipelines serve --role reconciler` runs it: it sweeps, beats
its heartbeat and stops when told."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.adapters.kafka.clients import ensure_topics
from services.entrypoints.roles import ROLES, run_roles
from tests.entrypoints.http.support import api_settings
from tests.waiting import eventually


async def test_the_role_sweeps_beats_and_stops(kafka_bootstrap: str, tmp_path: Path) -> None:
    assert "reconciler" in ROLES
    settings = api_settings(
        kafka_bootstrap, f"sqlite:///{tmp_path / 'events.db'}", reconciler_sweep_ms=50
    )
    await ensure_topics(settings)
    beat = tmp_path / "beats" / "reconciler.heartbeat"
    stop = asyncio.Event()
    role = asyncio.create_task(
        run_roles(settings, ["reconciler"], stop, heartbeat_dir=tmp_path / "beats")
    )
    try:
        await eventually(beat.exists, "the reconciler's heartbeat")
        first = beat.stat().st_mtime_ns
        await eventually(lambda: beat.stat().st_mtime_ns > first, "a second beat")
        assert not role.done()
    finally:
        stop.set()
        await asyncio.wait_for(role, 30)
    assert not beat.exists()  # cleared on a clean stop
