"""Running the service: `dev` (everything in one process), `serve` (the given roles
against a real cluster) and `health` (a role's heartbeat, for container health checks).

The roles, the broker and the event store are imported when a command runs: `health`
runs every few seconds in each container and needs none of them.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.entrypoints import health as health_check
from services.entrypoints.cli.environment import (
    BOOTSTRAP_FILE,
    DATA_DIR,
    configure_logging,
    fail,
    settings,
)

if TYPE_CHECKING:
    from services.settings import Settings

# The names of `services.entrypoints.roles.ROLES`, for the help text and `health`
# without importing every role (a test keeps the two equal).
ROLE_NAMES = ("handler", "relay", "api", "projector", "orchestrator", "reconciler")

HeartbeatDir = Annotated[
    Path | None,
    typer.Option(help="Where roles keep heartbeat files (default: a temp folder)."),
]


async def _until_signalled(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


# Every writer of the event store runs in the `dev` process, and each save wakes the relay
# in-process (services.adapters.commit_signals), so its poll is only a safety net there;
# the short default is for a relay in another process than the handler on SQLite.
DEV_RELAY_POLL_INTERVAL_MS = 1000


def dev(heartbeat_dir: HeartbeatDir = None) -> None:
    """Everything in one process: the embedded broker (unless
    PIPELINES_KAFKA_BOOTSTRAP_SERVERS is set), SQLite under ./.data, every role."""
    found = settings()
    configure_logging(found.log_format)
    asyncio.run(_dev(found, heartbeat_dir))


async def _dev(settings: Settings, heartbeat_dir: Path | None) -> None:
    from services.adapters.kafka.clients import ensure_topics
    from services.adapters.kafka.embedded_broker import EmbeddedBroker, embedded_tuning
    from services.entrypoints.roles import ROLES, run_roles

    stop = asyncio.Event()
    await _until_signalled(stop)
    broker: EmbeddedBroker | None = None
    if not settings.kafka_bootstrap_servers:
        broker = EmbeddedBroker(log_path=DATA_DIR / "broker.log")
        started = datetime.now(UTC)
        await broker.astart()
        settings = settings.model_copy(
            update={
                "kafka_bootstrap_servers": broker.bootstrap_servers,
                # What ran on the broker before this one cannot finish (docs/replay.md).
                "orchestrator_interrupt_before": started,
                **embedded_tuning(settings),
            }
        )
        # The embedded broker keeps nothing across restarts: publish the stored history
        # to it again (consumers dedupe by aggregate id and version).
        await asyncio.to_thread(_reset_relay, settings.event_store_url)
    if "relay_poll_interval_ms" not in settings.model_fields_set:
        settings = settings.model_copy(
            update={"relay_poll_interval_ms": DEV_RELAY_POLL_INTERVAL_MS}
        )
    try:
        await ensure_topics(settings)
        await asyncio.to_thread(_write_bootstrap, settings.kafka_bootstrap_servers or "")
        where = "embedded broker" if broker else "PIPELINES_KAFKA_BOOTSTRAP_SERVERS"
        typer.echo(f"kafka bootstrap: {settings.kafka_bootstrap_servers} ({where})")
        typer.echo(f"event store: {settings.event_store_url}")
        typer.echo(f"topics: {', '.join(settings.topics.all())}")
        typer.echo(f"roles: {', '.join(ROLES)}")
        if settings.api_port:
            typer.echo(f"http api: http://{settings.api_host}:{settings.api_port}")
            # The address to open: log in with a key from `pipelines api-keys create`.
            typer.echo(f"web console: http://{settings.api_host}:{settings.api_port}/ui/")
        typer.echo("ready; Ctrl-C stops")
        sys.stdout.flush()
        await run_roles(settings, list(ROLES), stop, heartbeat_dir=heartbeat_dir)
    finally:
        BOOTSTRAP_FILE.unlink(missing_ok=True)
        if broker is not None:
            await broker.astop()
    typer.echo("stopped")


def _write_bootstrap(bootstrap: str) -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    BOOTSTRAP_FILE.write_text(f"{bootstrap}\n")


def _reset_relay(url: str) -> None:
    from services.adapters.command_records import (
        PostgresCommandRecorder,
        SQLiteCommandRecorder,
        recorder_env,
    )
    from services.adapters.eventstore import open_event_store
    from services.runtimes.relay import RELAY_NAME

    with open_event_store(url, extra_env=recorder_env(url)) as store:
        recorder = store.recorder
        assert isinstance(recorder, SQLiteCommandRecorder | PostgresCommandRecorder)
        recorder.set_position(RELAY_NAME, 0)


def serve(
    role: Annotated[
        list[str], typer.Option("--role", help=f"Role(s) to run: {', '.join(ROLE_NAMES)}.")
    ],
    heartbeat_dir: HeartbeatDir = None,
) -> None:
    """Production: run the given role(s) against a real Kafka cluster."""
    found = settings()
    configure_logging(found.log_format)
    if not found.kafka_bootstrap_servers:
        raise fail(
            "no Kafka configured: set PIPELINES_KAFKA_BOOTSTRAP_SERVERS "
            "(`pipelines dev` starts an embedded broker for local use)"
        )
    from services.entrypoints.roles import UnknownRole, check_roles

    try:
        roles = check_roles(role)
    except UnknownRole as error:
        raise fail(str(error)) from None
    asyncio.run(_serve(found, roles, heartbeat_dir))


async def _serve(settings: Settings, roles: list[str], heartbeat_dir: Path | None) -> None:
    from services.adapters.kafka.clients import ensure_topics
    from services.entrypoints.roles import run_roles

    stop = asyncio.Event()
    await _until_signalled(stop)
    await ensure_topics(settings)
    await run_roles(settings, roles, stop, heartbeat_dir=heartbeat_dir)


def health(
    role: Annotated[str, typer.Option("--role", help="The role to check.")],
    max_age: Annotated[float, typer.Option(help="Seconds a heartbeat stays fresh.")] = (
        health_check.DEFAULT_MAX_AGE_S
    ),
    heartbeat_dir: HeartbeatDir = None,
) -> None:
    """Exit 0 if the role's heartbeat is fresh (for container health checks)."""
    if role not in ROLE_NAMES:
        raise fail(f"unknown role {role!r}; known: {', '.join(ROLE_NAMES)}")
    healthy, reason = health_check.check(role, heartbeat_dir, max_age)
    typer.echo(reason, err=not healthy)
    if not healthy:
        raise typer.Exit(1)
