"""What the API's middleware share: plain ASGI (not Starlette's BaseHTTPMiddleware, which
would buffer the watch streams) that acts on HTTP requests only and sees each answer's
start (its status and headers) as it goes out."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware:
    """`handle` serves the HTTP requests `applies` to; anything else (lifespan, a request
    left alone) goes to the app untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope):
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    def applies(self, scope: Scope) -> bool:
        return True

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


def on_start(send: Send, see: Callable[[Message], None]) -> Send:
    """`send`, calling `see` with the answer's start message (it may change its headers)
    before it goes out."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            see(message)
        await send(message)

    return sending


__all__ = ["HttpMiddleware", "on_start"]
