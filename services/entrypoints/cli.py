"""The `pipelines` command line: run the service (`dev`, `serve`), talk to it (`send`,
`events tail`), check on it (`health`) and manage its API keys (`api-keys`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from contracts.cloudevents import decode_event, decode_result, encode_command, result_id
from contracts.commands import COMMANDS, Command
from contracts.envelope import CE_ID
from contracts.results import CommandAccepted
from domain.errors import DomainError
from services.adapters.api_keys import ApiKeyStore, Scope
from services.adapters.command_records import (
    PostgresCommandRecorder,
    SQLiteCommandRecorder,
    recorder_env,
)
from services.adapters.eventstore import open_event_store
from services.adapters.kafka.clients import ensure_topics, make_consumer, make_producer
from services.adapters.kafka.embedded_broker import EmbeddedBroker
from services.entrypoints import health as health_check
from services.entrypoints.roles import ROLES, UnknownRole, check_roles, run_roles
from services.runtimes.relay import RELAY_NAME
from services.settings import Settings

DATA_DIR = Path(".data")
BOOTSTRAP_FILE = DATA_DIR / "bootstrap"
# How far back `send` looks for its result: covers clock skew between us and the broker.
_RESULT_LOOKBACK_MS = 10_000

EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3

app = typer.Typer(no_args_is_help=True, help="Event-sourced control plane for data pipelines.")
events_app = typer.Typer(no_args_is_help=True, help="Lifecycle events on the events topic.")
app.add_typer(events_app, name="events")
projections_app = typer.Typer(no_args_is_help=True, help="The read models.")
app.add_typer(projections_app, name="projections")
api_keys_app = typer.Typer(no_args_is_help=True, help="API keys of the HTTP API.")
app.add_typer(api_keys_app, name="api-keys")
docs_app = typer.Typer(no_args_is_help=True, help="The interface's documents.")
app.add_typer(docs_app, name="docs")

HeartbeatDir = Annotated[
    Path | None,
    typer.Option(help="Where roles keep heartbeat files (default: a temp folder)."),
]


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise _fail(f"invalid PIPELINES_* settings:\n{error}") from None


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


async def _until_signalled(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


# --- running the service ----------------------------------------------------------------


@app.command()
def dev(heartbeat_dir: HeartbeatDir = None) -> None:
    """Everything in one process: the embedded broker (unless
    PIPELINES_KAFKA_BOOTSTRAP_SERVERS is set), SQLite under ./.data, every role."""
    _logging()
    settings = _settings()
    asyncio.run(_dev(settings, heartbeat_dir))


async def _dev(settings: Settings, heartbeat_dir: Path | None) -> None:
    stop = asyncio.Event()
    await _until_signalled(stop)
    broker: EmbeddedBroker | None = None
    if not settings.kafka_bootstrap_servers:
        broker = EmbeddedBroker(log_path=DATA_DIR / "broker.log")
        await broker.astart()
        settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers})
        # The embedded broker keeps nothing across restarts: publish the stored history
        # to it again (consumers dedupe by aggregate id and version).
        await asyncio.to_thread(_reset_relay, settings.event_store_url)
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
    with open_event_store(url, extra_env=recorder_env(url)) as store:
        recorder = store.recorder
        assert isinstance(recorder, SQLiteCommandRecorder | PostgresCommandRecorder)
        recorder.set_position(RELAY_NAME, 0)


@app.command()
def serve(
    role: Annotated[list[str], typer.Option("--role", help=f"Role(s) to run: {', '.join(ROLES)}.")],
    heartbeat_dir: HeartbeatDir = None,
) -> None:
    """Production: run the given role(s) against a real Kafka cluster."""
    _logging()
    settings = _settings()
    if not settings.kafka_bootstrap_servers:
        raise _fail(
            "no Kafka configured: set PIPELINES_KAFKA_BOOTSTRAP_SERVERS "
            "(`pipelines dev` starts an embedded broker for local use)"
        )
    try:
        roles = check_roles(role)
    except UnknownRole as error:
        raise _fail(str(error)) from None
    asyncio.run(_serve(settings, roles, heartbeat_dir))


async def _serve(settings: Settings, roles: list[str], heartbeat_dir: Path | None) -> None:
    stop = asyncio.Event()
    await _until_signalled(stop)
    await ensure_topics(settings)
    await run_roles(settings, roles, stop, heartbeat_dir=heartbeat_dir)


@app.command()
def health(
    role: Annotated[str, typer.Option("--role", help="The role to check.")],
    max_age: Annotated[float, typer.Option(help="Seconds a heartbeat stays fresh.")] = (
        health_check.DEFAULT_MAX_AGE_S
    ),
    heartbeat_dir: HeartbeatDir = None,
) -> None:
    """Exit 0 if the role's heartbeat is fresh (for container health checks)."""
    if role not in ROLES:
        raise _fail(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    healthy, reason = health_check.check(role, heartbeat_dir, max_age)
    typer.echo(reason, err=not healthy)
    if not healthy:
        raise typer.Exit(1)


# --- talking to it ----------------------------------------------------------------------


def _client_settings() -> Settings:
    """Settings with a bootstrap address: the environment's, or the one `dev` wrote."""
    settings = _settings()
    if settings.kafka_bootstrap_servers:
        return settings
    if BOOTSTRAP_FILE.exists():
        bootstrap = BOOTSTRAP_FILE.read_text().strip()
        return settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
    raise _fail(
        "no Kafka address: set PIPELINES_KAFKA_BOOTSTRAP_SERVERS or run `pipelines dev` "
        f"in this folder (it writes {BOOTSTRAP_FILE})"
    )


def parse_fields(args: list[str]) -> dict[str, Any]:
    """`--config-id X --force true` -> {"config_id": "X", "force": True}: values are JSON
    when they parse as JSON, strings otherwise; `--name=value` works too."""
    fields: dict[str, Any] = {}
    rest = list(args)
    while rest:
        option = rest.pop(0)
        if not option.startswith("--") or len(option) == 2:
            raise ValueError(f"expected --field value, got {option!r}")
        name, _, inline = option[2:].partition("=")
        if inline:
            raw = inline
        elif rest and not rest[0].startswith("--"):
            raw = rest.pop(0)
        else:
            raw = "true"  # a bare flag
        try:
            value: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = raw
        fields[name.replace("-", "_")] = value
    return fields


def build_command(name: str, args: list[str]) -> Command:
    model = COMMANDS.get(name)
    if model is None:
        raise ValueError(f"unknown command {name!r}; known: {', '.join(sorted(COMMANDS))}")
    fields = parse_fields(args)
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        # `--name 123` parses as a number: where a field wanted text, give it the text back.
        texts = {
            str(e["loc"][0]): orjson.dumps(fields[str(e["loc"][0])]).decode()
            for e in error.errors()
            if e["type"] == "string_type" and e["loc"] and str(e["loc"][0]) in fields
        }
        if not texts:
            raise
        return model.model_validate({**fields, **texts})


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def send(
    ctx: typer.Context,
    command: Annotated[str, typer.Argument(help="Command name, e.g. CreatePipeline.")],
    result_timeout: Annotated[float, typer.Option(help="Seconds to wait for the result.")] = 30.0,
) -> None:
    """Publish one command (fields as --field value) and print its result as JSON.
    Exit code 1 when the command is rejected, 3 when no result came in time."""
    try:
        cmd = build_command(command, list(ctx.args))
    except (ValueError, ValidationError) as error:
        raise _fail(str(error)) from None
    settings = _client_settings()
    value, accepted = asyncio.run(_send(settings, cmd, result_timeout))
    if value is None:
        raise _fail(f"no result within {result_timeout} s (is a handler running?)", EXIT_TIMEOUT)
    typer.echo(orjson.dumps(orjson.loads(value), option=orjson.OPT_INDENT_2).decode())
    if not accepted:
        raise typer.Exit(EXIT_REJECTED)


async def _send(settings: Settings, cmd: Command, timeout_s: float) -> tuple[bytes | None, bool]:
    record = encode_command(cmd)
    command_id = record.header(CE_ID)
    assert command_id is not None
    since_ms = int(time.time() * 1000) - _RESULT_LOOKBACK_MS
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topics.commands, value=record.value, key=record.key, headers=record.headers
        )
    finally:
        await producer.stop()
    wanted = result_id(command_id)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        await _assign_since(consumer, settings.topics.command_results, since_ms)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for message in records:
                    if message.key != command_id.encode():
                        continue
                    decoded = decode_result(message.value, message.headers)
                    if decoded.attributes.id == wanted:
                        return message.value, isinstance(decoded.result, CommandAccepted)
        return None, False
    finally:
        await consumer.stop()


async def _assign_since(consumer: AIOKafkaConsumer, topic: str, since_ms: int | None) -> None:
    """Every partition of `topic`, from the first record at or after `since_ms` (no
    consumer group: no join delay). None means from the end."""
    await consumer.topics()  # loads metadata
    partitions = consumer.partitions_for_topic(topic) or set()
    if not partitions:
        raise _fail(f"topic {topic} does not exist (is the service running?)")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    if since_ms is None:
        await consumer.seek_to_end(*tps)
        return
    try:
        found = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
    except Exception:
        await consumer.seek_to_beginning(*tps)
        return
    for tp in tps:
        at = found.get(tp)
        if at is None:
            await consumer.seek_to_end(tp)  # nothing that recent yet
        else:
            consumer.seek(tp, at.offset)


@events_app.command("tail")
def events_tail(
    from_beginning: Annotated[
        bool, typer.Option(help="Start at the oldest event, not at new ones.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
) -> None:
    """Print lifecycle events as JSON lines as they arrive (Ctrl-C stops)."""
    settings = _client_settings()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(settings, from_beginning, limit))


async def _tail(settings: Settings, from_beginning: bool, limit: int | None) -> None:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    printed = 0
    try:
        await _assign_since(consumer, settings.topics.events, 0 if from_beginning else None)
        while limit is None or printed < limit:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for message in records:
                    event = decode_event(message.value, message.headers).event
                    typer.echo(orjson.dumps(event.model_dump(mode="json")).decode())
                    printed += 1
                    if limit is not None and printed >= limit:
                        return
            sys.stdout.flush()
    finally:
        await consumer.stop()


@docs_app.command("asyncapi")
def docs_asyncapi(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the JSON document; the YAML goes beside it "
            "(default: docs/asyncapi.json in the source checkout)."
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if the files are stale.")
    ] = False,
) -> None:
    """Regenerate the AsyncAPI document of the Kafka interface (FastStream, from the
    contracts) as JSON and YAML."""
    from contracts import asyncapi

    target = out if out is not None else asyncapi.DOCUMENT
    if check:
        stale = asyncapi.drift(target)
        for path in stale:
            typer.echo(f"stale: {path}")
        if stale:
            raise typer.Exit(1)
        typer.echo(f"up to date: {target}")
        return
    changed = asyncapi.write(target)
    for path in changed:
        typer.echo(f"updated: {path}")
    if not changed:
        typer.echo(f"up to date: {target}")


# --- API keys (written to the event store's database directly: how the first key is made) --


def _key_store() -> ApiKeyStore:
    return ApiKeyStore(_settings().event_store_url)


@api_keys_app.command("create")
def api_keys_create(
    name: Annotated[str, typer.Argument(help="Unique name: letters, digits, _ and -.")],
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Only GET requests (default: read and write).")
    ] = False,
) -> None:
    """Create a key and print it as the last line (it is shown only this once)."""
    scope = Scope.READ if read_only else Scope.WRITE
    with _key_store() as store:
        try:
            created = store.create(name, scope)
        except DomainError as error:
            raise _fail(error.message, EXIT_REJECTED) from None
    typer.echo(
        f"Created API key '{name}' ({scope}); send it as 'Authorization: Bearer <key>'. "
        "It is not stored and cannot be shown again:"
    )
    typer.echo(created.secret)


@api_keys_app.command("list")
def api_keys_list() -> None:
    """The live keys (never the keys themselves: their first characters)."""
    from rich.console import Console
    from rich.table import Table

    with _key_store() as store:
        keys = store.list_keys()
    table = Table()
    for column in ("name", "scope", "prefix", "created_at", "id"):
        table.add_column(column, overflow="fold")  # a narrow terminal wraps, never cuts
    for key in keys:
        table.add_row(key.name, str(key.scope), f"{key.prefix}...", key.created_at, key.id)
    Console().print(table)


@api_keys_app.command("revoke")
def api_keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key. API processes that checked it recently may accept it for up to
    PIPELINES_API_KEY_CACHE_TTL_S more seconds."""
    settings = _settings()
    with ApiKeyStore(settings.event_store_url) as store:
        try:
            store.revoke(name)
        except DomainError as error:
            raise _fail(error.message, EXIT_REJECTED) from None
    typer.echo(
        f"Revoked API key '{name}' (running API processes stop accepting it within "
        f"{settings.api_key_cache_ttl_s:g} s)."
    )


@projections_app.command("rebuild")
def projections_rebuild() -> None:
    """Rebuild every read model from the event store into fresh tables, catch up with what
    the live projector applied meanwhile, then swap them in."""
    from rich.progress import Progress

    from services.runtimes.projector import rebuild_read_models, total_events

    _logging()
    settings = _settings()
    total = total_events(settings)
    with Progress() as bar:
        task = bar.add_task("rebuilding read models", total=total or None)
        stats = rebuild_read_models(settings, lambda done: bar.update(task, completed=done))
        bar.update(task, completed=total)
    typer.echo(
        f"rebuilt from {stats.events} events; {stats.caught_up} aggregates caught up; swapped in"
    )


if __name__ == "__main__":
    app()
