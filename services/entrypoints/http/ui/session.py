"""Logging in to the console: an API key asked once, kept for the browser session.

The login form's key is checked against the key store (the API's KeyVerifier, the one
every request is checked with). The browser then holds only an opaque session id, in a
cookie that is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends
it) and scoped to the console's path; the key stays in this process's memory
(`Sessions`). Every console request checks the key again, so a revoked key logs its
sessions out at its next click (within the verifier's cache TTL).

The sessions live in the API process: a restart, or a request reaching another API
replica, asks for the key again. That costs a paste, and keeps the key out of the
browser and out of any store.

Every write of the console is an htmx request: htmx sends `HX-Request: true`, a header a
cross-site form cannot send, which with SameSite=Strict keeps other sites from making a
logged-in browser press buttons.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs

from fastapi import FastAPI, Request

from services.adapters.api_keys import ApiKey, Scope
from services.entrypoints.http.auth import KeyVerifier
from services.entrypoints.http.ui.calls import ApiCalls

COOKIE: Final = "pipelines_console"
IDLE_S: Final = 12 * 3600.0  # a session unused this long asks for the key again
MAX_SESSIONS: Final = 10_000


@dataclass
class Console:
    """The logged-in user of one request: their key and what it may do."""

    session_id: str
    secret: str
    key: ApiKey
    api: ApiCalls

    @property
    def can_write(self) -> bool:
        return self.key.scope.allows(Scope.WRITE)


@dataclass
class _Session:
    secret: str
    last_used: float


class Sessions:
    """Session id -> the key it was opened with, in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, _Session] = {}

    def open(self, secret: str) -> str:
        now = self._clock()
        if len(self._sessions) >= MAX_SESSIONS:
            self._expire(now)
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = _Session(secret, now)
        return session_id

    def secret_of(self, session_id: str) -> str | None:
        now = self._clock()
        found = self._sessions.get(session_id)
        if found is None:
            return None
        if now - found.last_used > IDLE_S:
            del self._sessions[session_id]
            return None
        found.last_used = now
        return found.secret

    def close(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def _expire(self, now: float) -> None:
        stale = [sid for sid, s in self._sessions.items() if now - s.last_used > IDLE_S]
        oldest = sorted(self._sessions, key=lambda sid: self._sessions[sid].last_used)
        for session_id in stale or oldest[: MAX_SESSIONS // 10]:
            del self._sessions[session_id]


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def api_app_of(request: Request) -> FastAPI:
    """The API app the console is mounted in (its state holds the key verifier)."""
    api: FastAPI = request.app.state.api
    return api


async def verify(request: Request, secret: str) -> ApiKey | None:
    verifier: KeyVerifier = api_app_of(request).state.key_verifier
    return await verifier.verify(secret.strip())


async def console_of(request: Request) -> Console | None:
    """The request's logged-in user, or None (no cookie, an unknown or idle session, or a
    key revoked since)."""
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    sessions = sessions_of(request)
    secret = sessions.secret_of(session_id)
    if secret is None:
        return None
    key = await verify(request, secret)
    if key is None:
        sessions.close(session_id)
        return None
    return Console(session_id, secret, key, ApiCalls(api_app_of(request), secret))


async def form_of(request: Request) -> dict[str, str]:
    """An urlencoded form body (what htmx and the login form send), the last value of
    each field."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[-1] for name, values in parse_qs(body, keep_blank_values=True).items()}


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


__all__ = [
    "COOKIE",
    "Console",
    "Sessions",
    "api_app_of",
    "console_of",
    "form_of",
    "is_htmx",
    "sessions_of",
    "verify",
]
