"""The retention sweeps run in their roles: the relay sweeps the processed-command records,
the orchestrator the stored route messages (with their ledgers) and dead instances'
heartbeats — here with a short interval, on the session's broker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from uuid import uuid4

from contracts import CreateConfig
from contracts.route_messages import RouteMessage
from projections.db import Database
from services.adapters.command_records import PROCESSED_TABLE
from services.adapters.message_store import DatabaseMessageStore
from services.adapters.stores import open_command_store
from services.entrypoints.roles import run_roles
from services.runtimes.orchestrator.liveness import Heartbeats
from services.service_layer.decider import Decider, Item
from services.service_layer.handlers import HANDLERS
from tests.entrypoints.http.support import api_settings
from tests.service_layer.decider_support import T0, Clock, config_document
from tests.waiting import eventually

HOUR = 3600.0


async def test_the_relay_and_the_orchestrator_sweep_what_is_past_their_windows(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    now = time.time()
    with open_command_store(url) as store:
        Decider(store, HANDLERS, clock=Clock()).decide(
            [
                Item(command_id=name, command=CreateConfig(name=name, document=config_document()))
                for name in ("old", "young")
            ]
        )
    old, young = uuid4(), uuid4()
    with DatabaseMessageStore(url) as messages:
        for execution in (old, young):
            message = RouteMessage(
                id=uuid4(), execution_id=execution, route="up", payload={}, stage=0,
                correlation_id="c", time=T0,
            )  # fmt: skip
            messages.store_consumed("fetch", "t.in", [message])
    with Heartbeats(url, clock=lambda: now - 2 * HOUR) as heartbeats:
        heartbeats.beat("dead", 1)
    db = Database(url)
    db.query(
        f"UPDATE {PROCESSED_TABLE} SET processed_at = ? WHERE command_id = 'old'", (now - 2 * HOUR,)
    )
    stamp = int((now - 2 * HOUR) * 1e9)
    db.query("UPDATE route_messages SET stored_at = ? WHERE execution_id = ?", (stamp, str(old)))
    db.query(
        "UPDATE route_message_executions SET last_seen_at = ? WHERE execution_id = ?",
        (stamp, str(old)),
    )

    def rows(statement: str) -> set[str]:
        return {str(value) for (value,) in db.query(statement)}

    settings = api_settings(
        kafka_bootstrap,
        url,
        execution_storage_dir=str(tmp_path / "executions"),
        retention_interval_s=0.05,
        retention_command_records_s=HOUR,
        retention_route_messages_s=HOUR,
        retention_heartbeats_s=HOUR,
    )
    stop = asyncio.Event()
    roles = asyncio.create_task(run_roles(settings, ["relay", "orchestrator"], stop))
    try:
        await eventually(
            lambda: (
                rows(f"SELECT command_id FROM {PROCESSED_TABLE}") == {"young"}
                and rows("SELECT DISTINCT execution_id FROM route_messages") == {str(young)}
                and "dead" not in rows("SELECT instance_id FROM orchestrator_heartbeats")
            ),
            "the relay's and the orchestrator's retention rounds",
            every_s=0.05,
        )
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await roles
        db.close()
    assert rows("SELECT execution_id FROM route_message_executions WHERE swept_at IS NOT NULL") == {
        str(old)
    }
