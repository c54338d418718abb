"""Who may call the API: `Authorization: Bearer <api key>` on every endpoint but
`/health` and the documentation (`/docs`, `/redoc`, `/openapi.json`, `/asyncapi*`).

`authenticate` is an app-wide FastAPI dependency (so every router, present and future,
is covered; OpenAPI shows it as the `ApiKey` bearer scheme). It answers 401 when the
header is missing, is not `Bearer`, or names no live key; a `read` key on a write
(POST, PUT, PATCH, DELETE) gets 403. `require_write` is the extra rule of routers that
need a write key for every method (key management).

Errors are in the family shape of the path (services.entrypoints.http.errors.family_of), with
Feldera's codes `AuthenticationFailed` (401) and `InsufficientPermissions` (403); paths
of no family get FastAPI's `{"detail": ...}`. 401s carry `WWW-Authenticate: Bearer` and
403s `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750).

One order to know: FastAPI decodes a JSON body before it runs dependencies, so a body
that is not JSON at all is answered 400 even without a key. Nothing runs for it and it
tells no more than the public OpenAPI document does; a body that is JSON but of the
wrong shape is validated after authentication (401 first).

Verified keys are cached in the process for `api_key_cache_ttl_s` (default 5 s), so a
request costs no database round trip; a key revoked through this process's API stops
at once, one revoked by the CLI or another API process within that TTL.

Stream routes (marked `takes_stream_token`) also take a short-lived stream token as
`?access_token=` in place of the header, since a browser's EventSource cannot send one;
`app.state.stream_tokens` checks it (services.entrypoints.http.stream_tokens). Every other
route refuses a token (401, reason `stream_token_not_accepted`). A route marked
`read_scope` needs only a read key whatever its method (minting a stream token).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, Protocol, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.adapters.api_keys import ApiKey, ApiKeyStore, Scope, key_hash, looks_like_key
from services.entrypoints.http.errors import family_of

WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CACHE_MAX_KEYS: Final = 10_000  # more live keys than this just cost more lookups

ACCESS_TOKEN: Final = "access_token"  # the stream routes' query parameter
_TAKES_STREAM_TOKEN: Final = "takes_stream_token"
_READ_SCOPE: Final = "read_scope"

AUTHENTICATION_FAILED: Final = "AuthenticationFailed"
INSUFFICIENT_PERMISSIONS: Final = "InsufficientPermissions"

bearer = HTTPBearer(
    scheme_name="ApiKey",
    description="An API key (`pipelines api-keys create NAME` or `POST /v0/api-keys`) "
    "as `Authorization: Bearer <key>`.",
    auto_error=False,  # the 401 is ours, in the family's shape
)


class AuthError(Exception):
    """A request refused before it reached its endpoint."""

    def __init__(
        self, status: int, error_code: str, message: str, details: Any, challenge: str
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.details = details
        self.challenge = challenge


def unauthenticated(reason: str, message: str) -> AuthError:
    # RFC 6750: an error code only when a bearer token was sent and is no good.
    invalid = reason in ("invalid_api_key", "invalid_stream_token")
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return AuthError(401, AUTHENTICATION_FAILED, message, {"reason": reason}, challenge)


def forbidden(key: ApiKey, needed: Scope) -> AuthError:
    return AuthError(
        403,
        INSUFFICIENT_PERMISSIONS,
        f"API key '{key.name}' has scope '{key.scope}'; this request needs '{needed}'",
        {"api_key": key.name, "scope": str(key.scope), "required": str(needed)},
        'Bearer error="insufficient_scope"',
    )


# --- verifying keys ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cached:
    key: ApiKey
    until: float


class KeyVerifier:
    """Keys by their hash, from the store, remembered for `ttl_s` (0: never). Only live
    keys are remembered: an unknown key always asks the database, so a key created a
    moment ago works at once."""

    def __init__(
        self, store: ApiKeyStore, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, _Cached] = {}

    async def verify(self, secret: str) -> ApiKey | None:
        if not looks_like_key(secret):
            return None
        digest = key_hash(secret)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and cached.until > now:
            return cached.key
        key = await asyncio.to_thread(self.store.find, digest)
        if key is None:
            self._cache.pop(digest, None)
        elif self.ttl_s > 0:
            if len(self._cache) >= CACHE_MAX_KEYS:
                self._evict(now)
            self._cache[digest] = _Cached(key, now + self.ttl_s)
        return key

    def forget(self, name: str) -> None:
        """Drop the cached keys named `name` (revoked through this process)."""
        for digest in [d for d, c in self._cache.items() if c.key.name == name]:
            del self._cache[digest]

    def _evict(self, now: float) -> None:
        expired = [d for d, c in self._cache.items() if c.until <= now]
        for digest in expired or list(self._cache)[: CACHE_MAX_KEYS // 10]:
            del self._cache[digest]


# --- stream tokens and route marks -------------------------------------------------------------

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


class StreamTokenChecker(Protocol):
    """`app.state.stream_tokens`: the live key a stream token stands for, or None."""

    async def verify(self, token: str) -> ApiKey | None: ...


def takes_stream_token(endpoint: Endpoint) -> Endpoint:
    """Mark a stream endpoint: it also takes `?access_token=<stream token>`."""
    setattr(endpoint, _TAKES_STREAM_TOKEN, True)
    return endpoint


def read_scope(endpoint: Endpoint) -> Endpoint:
    """Mark an endpoint a read key may call whatever its method."""
    setattr(endpoint, _READ_SCOPE, True)
    return endpoint


def _marked(request: Request, mark: str) -> bool:
    return bool(getattr(request.scope.get("endpoint"), mark, False))


async def _stream_token_key(request: Request, token: str) -> ApiKey:
    if not _marked(request, _TAKES_STREAM_TOKEN):
        raise unauthenticated(
            "stream_token_not_accepted",
            f"Only the stream endpoints take '?{ACCESS_TOKEN}='; send "
            "'Authorization: Bearer <api key>'",
        )
    checker: StreamTokenChecker | None = getattr(request.app.state, "stream_tokens", None)
    key = None if checker is None else await checker.verify(token)
    if key is None:
        raise unauthenticated("invalid_stream_token", "Invalid or expired stream token")
    return key


# --- the dependencies --------------------------------------------------------------------------


def needed_scope(method: str) -> Scope:
    return Scope.WRITE if method.upper() in WRITE_METHODS else Scope.READ


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiKey:
    """The request's live key, allowed for its method (kept on `request.state.api_key`)."""
    token = request.query_params.get(ACCESS_TOKEN)
    if credentials is None and token is not None and not request.headers.get("Authorization"):
        key = await _stream_token_key(request, token)
    elif credentials is None:
        if request.headers.get("Authorization"):
            raise unauthenticated(
                "unsupported_scheme", "The Authorization header must be 'Bearer <api key>'"
            )
        raise unauthenticated(
            "missing_credentials", "Missing header 'Authorization: Bearer <api key>'"
        )
    else:
        verifier: KeyVerifier = request.app.state.key_verifier
        found = await verifier.verify(credentials.credentials)
        if found is None:
            raise unauthenticated("invalid_api_key", "Unauthorized API key")
        key = found
    needed = Scope.READ if _marked(request, _READ_SCOPE) else needed_scope(request.method)
    if not key.scope.allows(needed):
        raise forbidden(key, needed)
    request.state.api_key = key
    return key


async def require_write(request: Request) -> None:
    """After `authenticate`: the key must have the `write` scope, whatever the method."""
    key: ApiKey = request.state.api_key
    if not key.scope.allows(Scope.WRITE):
        raise forbidden(key, Scope.WRITE)


# --- answering ---------------------------------------------------------------------------------


async def _on_auth_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, AuthError)
    render = family_of(request.url.path)
    if render is None:
        response: Response = JSONResponse({"detail": error.message}, status_code=error.status)
    else:
        response = render(error.status, error.error_code, error.message, error.details)
    response.headers["WWW-Authenticate"] = error.challenge
    return response


def install_auth(app: FastAPI) -> None:
    """Answer refused requests; `authenticate` itself goes in the app's dependencies."""
    app.add_exception_handler(AuthError, _on_auth_error)


__all__ = [
    "ACCESS_TOKEN",
    "AUTHENTICATION_FAILED",
    "INSUFFICIENT_PERMISSIONS",
    "AuthError",
    "KeyVerifier",
    "StreamTokenChecker",
    "authenticate",
    "install_auth",
    "needed_scope",
    "read_scope",
    "require_write",
    "takes_stream_token",
]
