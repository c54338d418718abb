"""`pipelines executions watch ID`: an execution followed live over the HTTP API's event
stream (`GET /api/v1/executions/{id}/events`), its stages shown as they move (status,
messages in/out/failed), until it ends.

The CLI's other commands reach the broker or the database directly; this one is the
API's client: `--api-url` (default `http://<PIPELINES_API_HOST>:<PIPELINES_API_PORT>`, as
`pipelines dev` serves it) and `--api-key` / `PIPELINES_API_KEY` (a read key will do). A
stream cut short (the API restarted, the network) is opened again after the last event
shown (`Last-Event-ID`), so nothing is shown twice or missed.

Exit codes: 0 the execution completed; 1 it failed, was cancelled, timed out or was
interrupted (or was deleted); 2 the API could not be reached or refused the watch (no
such execution, a bad key); 3 the watch's own `--timeout` passed first.

`watch_execution(...) -> int` (and `awatch_execution` inside an event loop) is the same
display for other commands that start an execution and then follow it.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Final

import orjson
import typer

from services.entrypoints.cli.environment import EXIT_REJECTED, EXIT_TIMEOUT, EXIT_USAGE, fail

if TYPE_CHECKING:
    import httpx
    from rich.console import Console, RenderableType
    from rich.live import Live

EXIT_COMPLETED: Final = 0
EXIT_UNREACHABLE: Final = EXIT_USAGE
DEFAULT_WATCH_TIMEOUT_S: Final = 300
MAX_WATCH_TIMEOUT_S: Final = 3600
RECONNECTS: Final = 5  # consecutive failed reconnections before giving up
# The server sends a comment every 15 s on an idle stream: a minute of silence is a
# dead connection.
READ_TIMEOUT_S: Final = 60.0
_LOCAL_HOSTS: Final = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


# --- the event stream ------------------------------------------------------------------------


@dataclass(frozen=True)
class SseEvent:
    name: str
    data: str
    id: str | None  # the last event id so far (the stream's, as EventSource keeps it)


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent]:
    """Server-sent events from a stream's lines (the WHATWG parsing rules, `retry`
    aside: reconnecting is the caller's)."""
    name, last_id = "", None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield SseEvent(name or "message", "\n".join(data), last_id)
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
        elif key == "id" and "\0" not in value:
            last_id = value


# --- what is shown ------------------------------------------------------------------------------


@dataclass
class View:
    """The execution as its events last showed it."""

    execution_id: str
    status: str = "connecting"
    run_status: str | None = None
    version: int = 0
    stages: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def update(self, data: dict[str, Any]) -> None:
        self.status = str(data["execution"]["status"])
        self.run_status = data.get("run_status")
        self.version = int(data["version"])
        self.stages = list(data.get("stages", []))

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table

        shown = self.status if self.run_status in (None, self.status) else (
            f"{self.status} ({self.run_status})"
        )  # fmt: skip
        table = Table()
        for column in ("stage", "status", "in", "out", "failed"):
            table.add_column(column, justify="left" if column in ("stage", "status") else "right")
        for stage in self.stages:
            table.add_row(
                str(stage["stage"]),
                str(stage["status"]),
                str(stage["messages_in"]),
                str(stage["messages_out"]),
                str(stage["messages_failed"]),
            )
        return Group(f"execution {self.execution_id}: {shown} (version {self.version})", table)


class Refused(Exception):
    """The API answered the watch with an error."""


@dataclass
class Watch:
    client: httpx.AsyncClient
    view: View
    deadline: float
    last_id: str | None = None

    async def once(self, on_change: Callable[[], None]) -> dict[str, Any] | None:
        """One stream until it ends: its `end` event's data, or None if it was cut."""
        remaining = math.ceil(self.deadline - time.monotonic())
        headers = {} if self.last_id is None else {"Last-Event-ID": self.last_id}
        path = f"/api/v1/executions/{self.view.execution_id}/events"
        params = {"timeout": str(min(max(remaining, 1), MAX_WATCH_TIMEOUT_S))}
        async with self.client.stream("GET", path, params=params, headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                raise Refused(_refusal(response))
            async for event in sse_events(response.aiter_lines()):
                data = orjson.loads(event.data)
                if event.name == "end":
                    ended: dict[str, Any] = data
                    return ended
                self.view.update(data)
                self.last_id = event.id
                on_change()
        return None


def _refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("detail") or body.get("message") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    return f"HTTP {response.status_code}: {detail or response.text or response.reason_phrase}"


def _exit_code(end: dict[str, Any]) -> int:
    if end["reason"] == "timeout":
        return EXIT_TIMEOUT
    return EXIT_COMPLETED if end.get("status") == "completed" else EXIT_REJECTED


class Display:
    """The view, drawn live from its first event on (nothing is drawn for a watch that
    never got one); messages go to `errors`."""

    def __init__(self, view: View, console: Console, errors: Console) -> None:
        self.view = view
        self.console = console
        self.errors = errors
        self._live: Live | None = None

    def changed(self) -> None:
        if self._live is None:
            from rich.live import Live

            self._live = Live(self.view.render(), console=self.console, auto_refresh=False)
            self._live.start()
        self._live.update(self.view.render(), refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()

    def gave_up(self) -> None:
        self.errors.print(
            f"gave up watching after the timeout; the execution is {self.view.status}"
        )


async def awatch_execution(
    api_url: str,
    api_key: str,
    execution_id: str,
    *,
    timeout_s: float = DEFAULT_WATCH_TIMEOUT_S,
    console: Console | None = None,
    errors: Console | None = None,
) -> int:
    """Show the execution live on `console` (stdout) until it ends or `timeout_s`
    passes, what went wrong on `errors` (stderr); the exit code."""
    import httpx
    from rich.console import Console

    view = View(execution_id)
    display = Display(view, console or Console(), errors or Console(stderr=True))
    timeout = httpx.Timeout(10.0, read=READ_TIMEOUT_S)
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=api_url, timeout=timeout, headers=headers) as client:
        watch = Watch(client, view, time.monotonic() + timeout_s)
        try:
            code = await _follow(watch, display)
        finally:
            display.close()
    if code in (EXIT_COMPLETED, EXIT_REJECTED):
        took = time.monotonic() - view.started
        display.console.print(f"execution {execution_id} {view.status} (watched {took:.1f} s)")
    return code


async def _follow(watch: Watch, display: Display) -> int:
    import httpx

    failures = 0
    while True:
        if time.monotonic() >= watch.deadline:
            display.gave_up()
            return EXIT_TIMEOUT
        try:
            end = await watch.once(display.changed)
            failures = 0
        except Refused as refused:
            display.errors.print(f"error: the API refused the watch: {refused}")
            return EXIT_UNREACHABLE
        except httpx.TransportError as error:
            failures += 1
            where = watch.client.base_url
            if watch.view.version == 0 and failures == 1:
                display.errors.print(f"error: cannot reach the API at {where}: {error}")
                return EXIT_UNREACHABLE
            if failures > RECONNECTS:
                display.errors.print(f"error: lost the API at {where}: {error}")
                return EXIT_UNREACHABLE
            await asyncio.sleep(min(0.25 * 2**failures, 4.0))
            continue
        if end is not None:
            if end["reason"] == "timeout" and time.monotonic() < watch.deadline:
                continue  # the server's own limit (an hour at most), not ours
            if end["reason"] == "timeout":
                display.gave_up()
            return _exit_code(end)
        # Cut without an end (the server stopped): open it again after the last event.


def watch_execution(
    api_url: str,
    api_key: str,
    execution_id: str,
    *,
    timeout_s: float = DEFAULT_WATCH_TIMEOUT_S,
    console: Console | None = None,
    errors: Console | None = None,
) -> int:
    """`awatch_execution` for synchronous callers (another CLI command)."""
    return asyncio.run(
        awatch_execution(
            api_url, api_key, execution_id, timeout_s=timeout_s, console=console, errors=errors
        )
    )


# --- the command --------------------------------------------------------------------------------


def default_api_url() -> str:
    from services.entrypoints.cli.environment import settings

    found = settings()
    host = _LOCAL_HOSTS.get(found.api_host, found.api_host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{found.api_port}"


def watch(
    execution_id: Annotated[str, typer.Argument(help="The execution's id.")],
    api_url: Annotated[
        str | None,
        typer.Option(
            envvar="PIPELINES_API_URL",
            help="The HTTP API (default: http://PIPELINES_API_HOST:PIPELINES_API_PORT).",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="PIPELINES_API_KEY", help="An API key (read or write).", show_default=False
        ),
    ] = None,
    timeout: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_WATCH_TIMEOUT_S, help="Stop watching after this many seconds (exit 3)."
        ),
    ] = DEFAULT_WATCH_TIMEOUT_S,
) -> None:
    """Follow an execution live until it ends; exit 0 if it completed, 1 if not."""
    try:
        the_id = str(uuid.UUID(execution_id))
    except ValueError:
        raise fail(f"not an execution id (a UUID): {execution_id!r}") from None
    if not api_key:
        raise fail("no API key: pass --api-key or set PIPELINES_API_KEY")
    url = api_url or default_api_url()
    try:
        code = watch_execution(url, api_key, the_id, timeout_s=timeout)
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    raise typer.Exit(code)


__all__ = [
    "EXIT_COMPLETED",
    "EXIT_UNREACHABLE",
    "SseEvent",
    "View",
    "awatch_execution",
    "default_api_url",
    "sse_events",
    "watch",
    "watch_execution",
]
