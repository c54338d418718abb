"""Stream tokens: how a browser opens a stream. `EventSource` cannot send
`Authorization`, so `POST /v0/stream-tokens` (with the usual `Authorization: Bearer <api
key>`, a read key or a write key) answers a short-lived token the stream endpoints take
as `?access_token=`; no other endpoint does (auth.py).

A token is `pst_<claims>.<signature>`: base64url JSON claims (the key's id and name, when
it expires in ms since the epoch) and their HMAC-SHA256 under this process's secret. It
is read-only whatever its key's scope, lives `ttl_s` seconds (1-300, default 60), and is
only as good as its key: every use looks the key up again (by name, and it must still be
the key of that id), so a revoked key's tokens stop at once, and an open stream checks
again every stream_hub.RECHECK_S seconds.

The secret is random per process unless one is given (`StreamTokens(store, secret)`): a
token is honoured by the API process that issued it (and dies with it), so behind
several API processes a browser's token request and its stream must reach the same one
(or they all need one shared secret).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyQuery
from pydantic import BaseModel, Field

from domain.errors import DomainError
from services.adapters.api_keys import ApiKey, ApiKeyStore, Scope
from services.entrypoints.http import error_docs
from services.entrypoints.http.auth import ACCESS_TOKEN, read_scope
from services.entrypoints.http.stream_hub import StillAllowed

PATH: Final = "/v0/stream-tokens"
TOKEN_PREFIX: Final = "pst_"
DEFAULT_TTL_S: Final = 60
MAX_TTL_S: Final = 300
MAX_TOKEN_CHARS: Final = 1024  # far more than any token issued; longer is garbage
_CLAIMS_VERSION: Final = 1

router = APIRouter(tags=["api keys"])

# What the stream routes declare (`dependencies=[Security(stream_token)]`) so the OpenAPI
# document shows they take either scheme; auth.py does the checking.
stream_token = APIKeyQuery(
    name=ACCESS_TOKEN,
    scheme_name="StreamToken",
    description=f"A stream token (`POST {PATH}`) as `?{ACCESS_TOKEN}=`, for browsers whose "
    "EventSource cannot send `Authorization`; only the stream endpoints take it.",
    auto_error=False,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StreamTokens:
    """Issues and checks stream tokens (`app.state.stream_tokens`, auth.py's checker)."""

    def __init__(
        self,
        store: ApiKeyStore,
        secret: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._secret = secret or secrets.token_bytes(32)
        self._clock = clock

    def issue(self, key: ApiKey, ttl_s: int) -> tuple[str, int]:
        """(token, when it expires in ms since the epoch)."""
        expires_ms = int(self._clock() * 1000) + ttl_s * 1000
        claims = {"v": _CLAIMS_VERSION, "kid": key.id, "name": key.name, "exp": expires_ms}
        body = _b64(orjson.dumps(claims))
        return f"{TOKEN_PREFIX}{body}.{_b64(self._sign(body))}", expires_ms

    async def verify(self, token: str) -> ApiKey | None:
        """The live key behind an unexpired token of ours, as a read key; None else."""
        claims = self._claims(token)
        if claims is None or claims["exp"] <= int(self._clock() * 1000):
            return None
        key = await self.live(claims["kid"], claims["name"])
        return None if key is None else replace(key, scope=Scope.READ)

    async def live(self, key_id: str, name: str) -> ApiKey | None:
        """The live key named `name`, if it is still the key `key_id`."""
        try:
            key = await asyncio.to_thread(self.store.get, name)
        except DomainError:  # UnknownApiKey: revoked (or never there)
            return None
        return key if key.id == key_id else None

    def _sign(self, body: str) -> bytes:
        return hmac.new(self._secret, body.encode(), hashlib.sha256).digest()

    def _claims(self, token: str) -> dict[str, Any] | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_CHARS:
            return None
        body, _, signature = token.removeprefix(TOKEN_PREFIX).partition(".")
        try:
            given = _unb64(signature)
            if not hmac.compare_digest(given, self._sign(body)):
                return None
            claims = orjson.loads(_unb64(body))
        except (binascii.Error, ValueError):
            return None
        # Signed by us, so well formed, unless the format changed under it.
        if not isinstance(claims, dict) or claims.get("v") != _CLAIMS_VERSION:
            return None
        return claims


def tokens_of(request: Request) -> StreamTokens:
    tokens: StreamTokens = request.app.state.stream_tokens
    return tokens


def still_allowed(request: Request) -> StillAllowed:
    """A stream's recheck: its key (the header's, or its token's) still live."""
    key: ApiKey = request.state.api_key
    tokens = tokens_of(request)

    async def check() -> bool:
        return await tokens.live(key.id, key.name) is not None

    return check


# --- the endpoint -----------------------------------------------------------------------------


class StreamTokenResponse(BaseModel):
    """A stream token: pass it as `?access_token=` to a stream endpoint."""

    token: str = Field(description="The token (read-only, for the stream endpoints only)")
    parameter: str = Field(description="The query parameter the stream endpoints take it as")
    expires_at: str = Field(description="When it stops opening streams (RFC 3339, UTC)")
    ttl_s: int = Field(description="Its life in seconds")
    api_key: str = Field(description="The name of the key it stands for")
    scope: Scope = Field(description="Always `read`")


TtlParam = Annotated[
    int,
    Query(ge=1, le=MAX_TTL_S, description="Seconds the token may open streams (1-300)"),
]


@router.post(
    PATH,
    summary="Create a stream token",
    description="A short-lived, read-only token for browsers, whose `EventSource` cannot "
    "send `Authorization`: the stream endpoints take it as `?access_token=`, no other "
    "endpoint does. A read key may create one. A stream opened with it ends once its key "
    "is revoked.",
    response_model=StreamTokenResponse,
    responses=error_docs.feldera(400),
)
@read_scope
async def create_stream_token(request: Request, ttl_s: TtlParam = DEFAULT_TTL_S) -> Response:
    key: ApiKey = request.state.api_key
    token, expires_ms = tokens_of(request).issue(key, ttl_s)
    expires_at = datetime.fromtimestamp(expires_ms / 1000, UTC)
    body = StreamTokenResponse(
        token=token,
        parameter=ACCESS_TOKEN,
        expires_at=expires_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        ttl_s=ttl_s,
        api_key=key.name,
        scope=Scope.READ,
    )
    # A credential: never kept by a cache on the way.
    return JSONResponse(body.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


__all__ = [
    "DEFAULT_TTL_S",
    "MAX_TTL_S",
    "PATH",
    "TOKEN_PREFIX",
    "StreamTokenResponse",
    "StreamTokens",
    "router",
    "still_allowed",
    "stream_token",
    "tokens_of",
]
