"""The JSON API, called in-process with the console user's key.

The console never builds a command or reads a read model itself: each page and each
button is one or more requests to the very routes `curl` reaches (httpx's ASGI transport
into the same app, the user's key as `Authorization: Bearer`), so a button sends the
command the HTTP API sends, through the same submit path (submit.py), checked by the same
authentication and scopes (auth.py), and is refused with the same structured error.

`Refusal` is that error in one shape whatever the family answered it in: Feldera's
`{message, error_code}`, FactFlow's `{detail, error_code}`, Esper's `{message, content:
{error_code}}`, Marquez's `{code, message}` (no code: its HTTP status stands in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from fastapi import FastAPI

# The console's internal requests name this host; nothing resolves it.
INTERNAL_BASE: Final = "http://console.internal"
# Longer than any read-your-writes wait and the API's own command result timeout, so the
# API answers (its 503) before this client would give up.
CALL_TIMEOUT_S: Final = 120.0


@dataclass(frozen=True)
class Refusal:
    """A request the API refused: what the page shows."""

    status: int
    error_code: str
    message: str
    details: Any = None


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def version(self) -> str | None:
        """The version a write left its aggregate at (`X-Pipelines-Version`)."""
        return self.headers.get("x-pipelines-version")

    @property
    def refusal(self) -> Refusal | None:
        return None if self.ok else refusal_of(self.status, self.body)


def refusal_of(status: int, body: Any) -> Refusal:
    """Any family's error body as a Refusal."""
    if not isinstance(body, dict):
        return Refusal(status, f"HTTP{status}", str(body or "") or f"HTTP status {status}")
    content = body.get("content")
    code = body.get("error_code")
    if code is None and isinstance(content, dict):
        code = content.get("error_code")
    message = body.get("message") or body.get("detail")
    if isinstance(message, list):  # FastAPI's 422: a list of problems
        message = "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', ()))}: {item.get('msg')}"
            for item in message
            if isinstance(item, dict)
        )
        code = code or "RequestValidationFailed"
    details = body.get("details")
    if details is None and isinstance(content, dict):
        details = content.get("details")
    return Refusal(status, str(code or f"HTTP{status}"), str(message or ""), details)


class ApiCalls:
    """Requests to `api` (the app the console is mounted in) as the holder of `key`."""

    def __init__(self, api: FastAPI, key: str) -> None:
        self._api = api
        self._key = key

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: str | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = {"Authorization": f"Bearer {self._key}", **(headers or {})}
        query = {k: _param(v) for k, v in (params or {}).items() if v not in (None, "")}
        transport = httpx.ASGITransport(app=self._api)
        async with httpx.AsyncClient(
            transport=transport, base_url=INTERNAL_BASE, timeout=CALL_TIMEOUT_S
        ) as client:
            response = await client.request(
                method, path, params=query, json=json, content=content, headers=sent
            )
        return Answer(response.status_code, _body(response), dict(response.headers))

    async def get(self, path: str, *, min_version: int | None = None, **params: Any) -> Answer:
        """`min_version`: a write's version (read_your_writes.py) the read waits for."""
        headers = None if min_version is None else {"X-Min-Version": str(min_version)}
        return await self.request("GET", path, params=params, headers=headers)

    async def post(self, path: str, **options: Any) -> Answer:
        return await self.request("POST", path, **options)


def _param(value: Any) -> Any:
    return str(value).lower() if isinstance(value, bool) else value


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    if "json" in response.headers.get("content-type", ""):
        return response.json()
    return response.text


__all__ = ["CALL_TIMEOUT_S", "Answer", "ApiCalls", "Refusal", "refusal_of"]
