"""The `api` role: uvicorn serving the app on the configured host and port, inside the
process's own event loop, stopped by the role's stop event (not by uvicorn's signals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn

from services.entrypoints.http.app import create_app
from services.entrypoints.http.stream_hub import close_streams
from services.settings import Settings

log = logging.getLogger(__name__)

_BEAT_S = 5.0


class _EmbeddedServer(uvicorn.Server):
    # The process's signal handlers (the CLI's) stop every role at once; uvicorn's own
    # would stop only this one and then re-raise the signal.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port fails as an OSError (uvicorn
    would exit the process); the connections it accepts send without Nagle's delay."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every answer (headers and body written apart) waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


async def run_api(settings: Settings, stop: asyncio.Event, heartbeat: Callable[[], None]) -> None:
    """Serve the HTTP API until `stop` is set."""
    sock = bind(settings.api_host, settings.api_port)
    try:
        host, port = sock.getsockname()[:2]
        app = create_app(settings)
        # log_config=None: uvicorn's lines go through our root logger (text or JSON).
        config = uvicorn.Config(
            app, lifespan="on", log_level="info", access_log=False, log_config=None
        )
        server = _EmbeddedServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="api-server")
        log.info("HTTP API on http://%s:%d", host, port)
        stopping = asyncio.create_task(stop.wait())
        try:
            while not task.done() and not stop.is_set():
                heartbeat()
                await asyncio.wait(
                    {task, stopping}, timeout=_BEAT_S, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            stopping.cancel()
        await close_streams(app)  # else the shutdown waits for every open stream's timeout
        server.should_exit = True
        await task
        if not stop.is_set():
            # uvicorn logs why (e.g. the command bus could not start) and returns quietly.
            raise RuntimeError("The HTTP API server stopped by itself (see the log above)")
    finally:
        sock.close()


__all__ = ["run_api"]
