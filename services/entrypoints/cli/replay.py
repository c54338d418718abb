"""`pipelines replay PARENT --from-stage ROUTE ...`: a replay of an execution, as a new
child execution (docs/replay.md), sent as one `ReplayExecution` through the command bus
the way `pipelines send` sends any command, its result printed as JSON (a dry run's
result holds the plan).

PARENT is the parent's execution id or its tag. `--message` (repeatable) gives a manual
replay's payloads, each a JSON object. With `--watch` the accepted child is then
followed live over the HTTP API (`pipelines executions watch`), the view on stderr so
stdout stays the result's JSON.

Exit codes, as `send`'s: 0 accepted, 1 rejected, 2 unusable input or no reachable service,
3 no result in time (the replay may still be decided later). With `--watch`, once
accepted, the watch's: 0 the child completed, 1 it did not, 2 the API could not be
reached, 3 the watch timed out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
import typer

from services.entrypoints.cli.environment import fail
from services.entrypoints.cli.executions import (
    DEFAULT_WATCH_TIMEOUT_S,
    MAX_WATCH_TIMEOUT_S,
    default_api_url,
    watch_execution,
)
from services.entrypoints.cli.send import submit

if TYPE_CHECKING:
    from contracts.replay_commands import ReplayExecution

# contracts.statuses.ReplaySource and contracts.replay_commands.ReplayDirection, spelled
# here so `--help` imports no contracts (tests/entrypoints/cli/test_cli_replay.py checks
# they agree).
Source = Literal["storage", "lineage", "manual"]
Direction = Literal["consumed", "produced"]


def build_replay(fields: dict[str, Any], messages: list[str]) -> ReplayExecution:
    """The command from the options given (None: not given). Raises ValueError (pydantic's
    ValidationError is one) for a message that is no JSON or fields that do not go
    together."""
    from contracts.replay_commands import ReplayExecution

    given = {name: value for name, value in fields.items() if value is not None}
    if messages:
        given["messages"] = [_json(f"--message #{n}", raw) for n, raw in enumerate(messages, 1)]
    return ReplayExecution.model_validate(given)


def _json(option: str, raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"{option} is not JSON ({error}): {raw!r}") from None


def replay(
    parent: Annotated[str, typer.Argument(help="The parent's execution id or tag.")],
    from_stage: Annotated[
        str | None,
        typer.Option(help="The parent's route whose stored messages are replayed (storage)."),
    ] = None,
    to_route: Annotated[
        str | None,
        typer.Option(help="The child's route they go to (default: the from-stage route)."),
    ] = None,
    source: Annotated[Source, typer.Option(help="Where the messages come from.")] = "storage",
    direction: Annotated[
        Direction, typer.Option(help="The stage's consumed or produced messages.")
    ] = "consumed",
    only_failed: Annotated[
        bool, typer.Option("--only-failed", help="Only the messages that failed.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    allow_large: Annotated[
        bool,
        typer.Option("--allow-large", help="Replay more than PIPELINES_REPLAY_MAX_MESSAGES."),
    ] = False,
    tag: Annotated[str | None, typer.Option(help="A unique tag for the child.")] = None,
    config_id: Annotated[
        str | None, typer.Option(help="Run the child on this config's routes.")
    ] = None,
    config_version: Annotated[
        int | None, typer.Option(help="Run the child on this version of its config.")
    ] = None,
    message: Annotated[
        list[str] | None,
        typer.Option(help="manual: a payload (a JSON object) to publish; repeatable, in order."),
    ] = None,
    from_path: Annotated[
        str | None,
        typer.Option(help="manual: stored messages, {execution_id}/{route}/{consumed|produced}."),
    ] = None,
    metadata: Annotated[
        str | None, typer.Option(help="A JSON object kept with the child's manifest.")
    ] = None,
    init_payload_overrides: Annotated[
        str | None,
        typer.Option(help="A JSON object deep-merged into every replayed payload."),
    ] = None,
    result_timeout: Annotated[float, typer.Option(help="Seconds to wait for the result.")] = 30.0,
    watch: Annotated[
        bool, typer.Option("--watch", help="Then follow the child live until it ends.")
    ] = False,
    api_url: Annotated[
        str | None,
        typer.Option(
            envvar="PIPELINES_API_URL",
            help="--watch: the HTTP API (default: http://PIPELINES_API_HOST:PIPELINES_API_PORT).",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="PIPELINES_API_KEY", help="--watch: an API key.", show_default=False),
    ] = None,
    watch_timeout: Annotated[
        int,
        typer.Option(min=1, max=MAX_WATCH_TIMEOUT_S, help="--watch: give up after these seconds."),
    ] = DEFAULT_WATCH_TIMEOUT_S,
) -> None:
    """Replay an execution as a new child execution and print the result as JSON. Exit
    code 1 when the replay is rejected, 3 when no result came in time."""
    if watch and dry_run:
        raise fail("--watch follows the child a replay makes; a --dry-run makes none")
    if watch and not api_key:
        raise fail("--watch needs an API key: pass --api-key or set PIPELINES_API_KEY")
    try:
        command = build_replay(
            {
                "parent": parent,
                "replay_source": source,
                "from_stage": from_stage,
                "to_route": to_route,
                "direction": direction,
                "from_path": from_path,
                "only_failed": only_failed,
                "dry_run": dry_run,
                "allow_large": allow_large,
                "config_id": config_id,
                "config_version": config_version,
                "tag": tag,
                "metadata": None if metadata is None else _json("--metadata", metadata),
                "init_payload_overrides": None
                if init_payload_overrides is None
                else _json("--init-payload-overrides", init_payload_overrides),
            },
            message or [],
        )
    except ValueError as error:
        raise fail(str(error)) from None
    result = submit(command, result_timeout)
    if not watch:
        return
    from rich.console import Console

    assert api_key is not None and result.aggregate_id is not None
    try:
        code = watch_execution(
            api_url or default_api_url(),
            api_key,
            result.aggregate_id,
            timeout_s=watch_timeout,
            console=Console(stderr=True),
        )
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    raise typer.Exit(code)


__all__ = ["Direction", "Source", "build_replay", "replay"]
