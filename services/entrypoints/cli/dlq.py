"""`pipelines dlq list | show | redrive`: the commands DLQ, for operators.

The command handler sends every message it cannot decode (malformed bytes, an unknown
command type, a schema violation, one too large) byte for byte to the DLQ topic, its own
headers kept and the reason appended as `dlq_*` headers. A message is named by its DLQ
position, `PARTITION:OFFSET`.

- `list`: every message now on the DLQ (a bounded read: it stops at the end), oldest
  first per partition: position, age, key, command type and id, the reason, and where a
  message that failed again after a redrive was redriven from. `--json` prints one JSON
  object per line instead of the table.
- `show POSITION`: one message as JSON: the reason, its own headers, and its value,
  decoded when it is JSON (else as text, else base64).
- `redrive POSITION|PARTITION:FROM-TO ... | --all`: publish the messages again to the
  commands topic, each with its key, value and headers as they arrived and a
  `dlq_redriven_from` header; `--error-code` / `--command-type` narrow the choice. Each
  is answered like any command: its result is printed, one JSON object per line, as the
  handler put it on the results topic, and a line on stderr says what happened. A
  redriven message keeps its command id (its `ce_id`, or the position the handler named
  it by), so redriving it twice is harmless: the second redrive gets the first result
  again and changes nothing. One still undecodable is rejected with the same reason and
  goes to the DLQ again (a new position, `dlq_redriven_from` naming this one); the DLQ
  is never changed.

Exit codes: 0 every redriven message was accepted; 1 one was rejected (or had no value
to redrive, or `show` found no such message); 2 unusable input or no reachable service;
3 a result did not come in time (the command may still be applied).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

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
    from services.adapters.kafka.dead_letters import DeadLetter, Redriven
    from services.settings import Settings

# The rejections that mean the handler could not decode the message (contracts.errors.
# WireErrorCode): such a redriven message is in the DLQ again.
UNDECODABLE = frozenset(
    {
        "MalformedMessage",
        "MissingCommandType",
        "UnknownCommandType",
        "CommandSchemaViolation",
        "MessageTooLarge",
    }
)

T = TypeVar("T")

ErrorCodeOption = Annotated[
    str | None, typer.Option(help="Only messages with this dlq_error_code.")
]
CommandTypeOption = Annotated[
    str | None, typer.Option(help="Only messages whose ce_type is this command type.")
]


def parse_position(text: str) -> tuple[int, int, int]:
    """`P:O` -> (P, O, O); `P:A-B` -> (P, A, B). Raises ValueError."""
    partition, sep, offsets = text.partition(":")
    first, dash, last = offsets.partition("-")
    try:
        numbers = (int(partition), int(first), int(last) if dash else int(first))
    except ValueError:
        numbers = (-1, -1, -1)
    if not sep or min(numbers) < 0 or numbers[2] < numbers[1]:
        raise ValueError(f"expected PARTITION:OFFSET or PARTITION:FROM-TO, got {text!r}")
    return numbers


def matches(letter: DeadLetter, error_code: str | None, command_type: str | None) -> bool:
    return (error_code is None or letter.error_code == error_code) and (
        command_type is None or letter.command_type == command_type
    )


def _reaching(work: Coroutine[Any, Any, T]) -> T:
    """Run `work`; a broker it cannot reach is exit 2."""
    try:
        return asyncio.run(work)
    except RuntimeError as error:  # aiokafka's KafkaError, or a topic is missing
        raise unreachable(error) from None


def _read(settings: Settings, **options: Any) -> list[DeadLetter]:
    from services.adapters.kafka.dead_letters import read_dead_letters

    return _reaching(read_dead_letters(settings, **options))


def _text(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode(errors="replace")


# --- list ------------------------------------------------------------------------------------


def summary(letter: DeadLetter, now: float | None = None) -> dict[str, Any]:
    from services.adapters.kafka.dead_letters import age_s

    return {
        "position": letter.position,
        "written_at": letter.written_at.isoformat().replace("+00:00", "Z"),
        "age_s": round(age_s(letter, now), 1),
        "key": _text(letter.key),
        "command_type": letter.command_type,
        "command_id": letter.command_id,
        "error_code": letter.error_code,
        "error_message": letter.error_message,
        "redriven_from": letter.redriven_from,
    }


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def list_messages(
    error_code: ErrorCodeOption = None,
    command_type: CommandTypeOption = None,
    json_lines: Annotated[
        bool, typer.Option("--json", help="One JSON object per message, not a table.")
    ] = False,
) -> None:
    """The messages on the commands DLQ now, oldest first per partition."""
    letters = [
        letter for letter in _read(client_settings()) if matches(letter, error_code, command_type)
    ]
    if json_lines:
        for letter in letters:
            typer.echo(orjson.dumps(summary(letter)).decode())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(letters)} message(s) on the commands DLQ")
    for column in ("position", "age", "key", "command", "command id", "error"):
        table.add_column(column, no_wrap=True)
    for column in ("message", "redriven from"):
        table.add_column(column, overflow="fold")  # a narrow terminal wraps, never cuts
    for letter in letters:
        found = summary(letter)
        table.add_row(
            found["position"],
            _age(found["age_s"]),
            found["key"],
            found["command_type"] or "-",
            found["command_id"] or "-",
            found["error_code"] or "-",
            found["error_message"] or "-",
            found["redriven_from"] or "-",
        )
    Console().print(table)


# --- show ------------------------------------------------------------------------------------


def shown(letter: DeadLetter) -> dict[str, Any]:
    """The message as `show` prints it."""
    value: Any
    raw = letter.value or b""
    try:
        value, form = orjson.loads(raw), "json"
    except orjson.JSONDecodeError:
        try:
            value, form = raw.decode(), "text"
        except UnicodeDecodeError:
            value, form = base64.b64encode(raw).decode(), "base64"
    return {
        **summary(letter),
        "topic": letter.topic,
        "reason": letter.reason,
        "headers": {name: _text(raw) for name, raw in letter.own_headers},
        "value_format": form,
        "value": value,
    }


def show(
    position: Annotated[str, typer.Argument(help="The message's PARTITION:OFFSET.")],
) -> None:
    """One message of the commands DLQ: reason, headers and value (as JSON)."""
    try:
        partition, offset, _ = parse_position(position)
    except ValueError as error:
        raise fail(str(error)) from None
    letters = _read(
        client_settings(),
        partition=partition,
        from_offset=offset,
        stop=lambda letter: letter.offset >= offset,
    )
    letter = next((found for found in letters if found.offset == offset), None)
    if letter is None:
        raise fail(f"no message at {position} on the commands DLQ", EXIT_REJECTED)
    typer.echo(orjson.dumps(shown(letter), option=orjson.OPT_INDENT_2).decode())


# --- redrive ---------------------------------------------------------------------------------


def chosen(
    letters: list[DeadLetter],
    positions: list[tuple[int, int, int]],
    error_code: str | None,
    command_type: str | None,
) -> list[DeadLetter]:
    """The letters named by `positions` (every one when empty) that match the filters."""
    return [
        letter
        for letter in letters
        if matches(letter, error_code, command_type)
        and (
            not positions
            or any(p == letter.partition and a <= letter.offset <= b for p, a, b in positions)
        )
    ]


def told(outcome: Redriven) -> str:
    """What happened to one redriven message, for stderr."""
    where = f"{outcome.letter.position} (command {outcome.command_id})"
    result = outcome.result
    if result is None:
        return f"not redriven: {where}: {outcome.problem}"
    if result.outcome == "accepted":
        return f"redriven {where}: accepted"
    error_code = getattr(result, "error_code", None)
    again = " - undecodable still: back on the DLQ" if error_code in UNDECODABLE else ""
    return f"redriven {where}: rejected, {error_code}{again}"


def redrive(
    positions: Annotated[
        list[str] | None,
        typer.Argument(help="PARTITION:OFFSET or PARTITION:FROM-TO (inclusive), repeatable."),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every message (that matches the filters).")
    ] = False,
    error_code: ErrorCodeOption = None,
    command_type: CommandTypeOption = None,
    result_timeout: Annotated[float, typer.Option(help="Seconds to wait for each result.")] = 30.0,
) -> None:
    """Publish DLQ messages to the commands topic again and print their results."""
    try:
        ranges = [parse_position(text) for text in positions or ()]
    except ValueError as error:
        raise fail(str(error)) from None
    if not ranges and not every:
        raise fail("name the messages (PARTITION:OFFSET, PARTITION:FROM-TO) or pass --all")
    settings = client_settings()
    letters = chosen(_read(settings), ranges, error_code, command_type)
    if not letters:
        raise fail("no message on the commands DLQ matches", EXIT_REJECTED)
    outcomes = _redriven(settings, letters, result_timeout)
    for outcome in outcomes:
        if outcome.result is not None:
            typer.echo(orjson.dumps(outcome.result.model_dump(mode="json")).decode())
        typer.echo(told(outcome), err=True)
    if any(outcome.timed_out for outcome in outcomes):
        raise typer.Exit(EXIT_TIMEOUT)
    if any(outcome.result is None or outcome.result.outcome != "accepted" for outcome in outcomes):
        raise typer.Exit(EXIT_REJECTED)


def _redriven(settings: Settings, letters: list[DeadLetter], timeout_s: float) -> list[Redriven]:
    from services.adapters.kafka.dead_letters import redrive_all

    return _reaching(redrive_all(settings, letters, timeout_s=timeout_s))
