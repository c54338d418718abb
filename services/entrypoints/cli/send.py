"""`pipelines send CommandName --field value ...`: one command through the command bus,
its result printed as JSON.

Exit codes: 0 accepted, 1 rejected, 2 unusable input or no reachable service, 3 no result
in time (the command may still be applied later).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from services.entrypoints.cli.environment import (
    EXIT_REJECTED,
    EXIT_TIMEOUT,
    client_settings,
    fail,
    unreachable,
)

if TYPE_CHECKING:
    from contracts.commands import Command
    from contracts.results import CommandResult
    from services.settings import Settings


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
    """The command `name` from `--field value` arguments. Raises ValueError (pydantic's
    ValidationError is one) for an unknown command or invalid fields."""
    from pydantic import ValidationError

    from contracts.commands import COMMANDS

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


def send(
    ctx: typer.Context,
    command: Annotated[str, typer.Argument(help="Command name, e.g. CreatePipeline.")],
    result_timeout: Annotated[float, typer.Option(help="Seconds to wait for the result.")] = 30.0,
) -> None:
    """Publish one command (fields as --field value) and print its result as JSON.
    Exit code 1 when the command is rejected, 3 when no result came in time."""
    try:
        cmd = build_command(command, list(ctx.args))
    except ValueError as error:
        raise fail(str(error)) from None
    submit(cmd, result_timeout)


def submit(cmd: Command, result_timeout: float) -> CommandResult:
    """Publish `cmd` through the command bus and print its result as JSON; the result if
    accepted, else exit 1 (2: no reachable service, 3: no result in time)."""
    result = asyncio.run(_send(client_settings(), cmd, result_timeout))
    typer.echo(printed(result))
    if result.outcome != "accepted":
        raise typer.Exit(EXIT_REJECTED)
    return result


def printed(result: CommandResult) -> str:
    """The result as the handler put it on the wire (its JSON encoding), indented."""
    return orjson.dumps(result.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode()


async def _send(settings: Settings, cmd: Command, timeout_s: float) -> CommandResult:
    from contracts.envelope import COMMAND_SOURCE
    from services.adapters.kafka.command_bus import CommandBus, NotPublished, ResultTimeout

    bus = CommandBus(settings, source=COMMAND_SOURCE, timeout_s=timeout_s)
    try:
        await bus.start(results=True)
    except RuntimeError as error:  # aiokafka's KafkaError, or the results topic is missing
        raise unreachable(error) from None
    try:
        return await bus.send(cmd)
    except ResultTimeout:
        raise fail(
            f"no result within {timeout_s} s (is a handler running?)", EXIT_TIMEOUT
        ) from None
    except NotPublished as error:
        raise fail(f"command {error.command_id} not published: {error.reason}") from None
    finally:
        await bus.stop()
