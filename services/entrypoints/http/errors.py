"""Error responses in each API family's own shape, and the rules every family shares.

Each seed family answers errors in its own JSON shape (Feldera `{message, error_code,
details}` for `/v0/pipelines` and `/v0/api-keys`; the other families register theirs
here as they come). FastAPI's own errors (a request that fails validation, an unknown
route) are rendered in the shape of the family whose path they hit; paths no family
claims keep FastAPI's defaults. Seed 004's family (FactFlow, itself a FastAPI app) keeps
FastAPI's 422 HTTPValidationError for a request that fails validation, as the seed
documents; its other errors are its ErrorResponse, with the request's correlation id.

A DomainError raised by an endpoint (or a dependency) is answered in the shape of the
family of its path, so a router raises and never renders an error itself.

Every 503 carries `Retry-After: 5`, whoever produced it (a middleware makes sure).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, TypeVar

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from contracts.errors import ErrorBody
from domain.errors import RETRY_AFTER_SECONDS, DomainError
from services.entrypoints.http.asgi import HttpMiddleware, on_start

RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_SECONDS)}

Choice = TypeVar("Choice", bound=StrEnum)

# (status, error_code, message, details) -> the family's response.
Renderer = Callable[[int, str, str, Any], Response]


def retry_headers(status: int) -> dict[str, str]:
    return dict(RETRY_AFTER) if status == 503 else {}


# --- the Feldera family (/v0/pipelines) -------------------------------------------------


def feldera_response(
    status: int, body: ErrorBody, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=status,
        headers={**retry_headers(status), **(headers or {})},
    )


def render_feldera(status: int, error_code: str, message: str, details: Any) -> Response:
    return feldera_response(
        status, ErrorBody(message=message, error_code=error_code, details=details)
    )


def domain_error_response(error: DomainError) -> Response:
    return feldera_response(error.http_status, error.body())


def invalid_query_parameter(name: str, value: str, expected: str) -> DomainError:
    """A query parameter that does not parse (FastAPI would answer 422; Feldera's family
    answers 400 in its own shape)."""
    return DomainError(
        "InvalidQueryParameter",
        f"Invalid value '{value}' for query parameter '{name}': expected {expected}",
        {"parameter": name, "value": value, "expected": expected},
        400,
    )


def parse_choice(name: str, raw: str | None, choices: type[Choice], default: Choice) -> Choice:
    """A query parameter naming one of `choices` (`default` when absent); another value is
    the 400 above."""
    if raw is None:
        return default
    try:
        return choices(raw)
    except ValueError:
        expected = "one of " + ", ".join(choice.value for choice in choices)
        raise invalid_query_parameter(name, raw, expected) from None


# --- the Marquez family (/api/v1/jobs, seed 002) ------------------------------------------


def render_marquez(status: int, error_code: str, message: str, details: Any) -> Response:
    """Marquez's ErrorMessage `{code, message}`: the error code and details have no place
    in it (Dropwizard's shape)."""
    return JSONResponse(
        {"code": status, "message": message}, status_code=status, headers=retry_headers(status)
    )


# --- the Esper family (/pipelines/v0 and /v0/runs, seed 003) -------------------------------


def render_esper(status: int, error_code: str, message: str, details: Any) -> Response:
    """Esper's envelope `{code, message, content}` (its Error_400_Bad_Data has `code`
    and `message`); `content` carries our error code and details."""
    return JSONResponse(
        {
            "code": status,
            "message": message,
            "content": {"error_code": error_code, "details": details},
        },
        status_code=status,
        headers=retry_headers(status),
    )


# --- the FactFlow family (/api/v1/configs and /api/v1/executions, seed 004) ---------------
# FactFlow is a FastAPI app: its errors are ErrorResponse, but a request that fails
# validation keeps FastAPI's 422 HTTPValidationError, as the seed documents.

CORRELATION_HEADER: Final = "X-Correlation-ID"
# A client's correlation id is echoed only when it is a plain token of sane length;
# anything else is replaced by a fresh one rather than reflected back.
_MAX_CORRELATION_LENGTH: Final = 128
_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def correlation_id() -> str:
    """The current request's correlation id (set by CorrelationId); a fresh one outside."""
    return _correlation_id.get() or str(uuid.uuid4())


def factflow_error(detail: str, error_code: str) -> dict[str, Any]:
    """FactFlow's ErrorResponse: `detail` as in FastAPI's HTTPException, plus the code,
    the request's correlation id and when the error was answered."""
    return {
        "detail": detail,
        "error_code": error_code,
        "correlation_id": correlation_id(),
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def render_factflow(status: int, error_code: str, message: str, details: Any) -> Response:
    """ErrorResponse `{detail, error_code, correlation_id, timestamp}`: the details have
    no place in it (the message says what they would)."""
    return JSONResponse(
        factflow_error(message, error_code), status_code=status, headers=retry_headers(status)
    )


def _usable_correlation_id(raw: str | None) -> str | None:
    if raw is None or not 0 < len(raw) <= _MAX_CORRELATION_LENGTH:
        return None
    return raw if raw.isascii() and raw.isprintable() and " " not in raw else None


class CorrelationId(HttpMiddleware):
    """ASGI middleware for the families that carry a correlation id: the request's
    `X-Correlation-ID` (or a new UUID) is the id of every error answered and is echoed
    in the response's `X-Correlation-ID` header."""

    def applies(self, scope: Scope) -> bool:
        return family_of(scope["path"]) in CORRELATED_FAMILIES

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = Headers(scope=scope).get(CORRELATION_HEADER)
        the_id = _usable_correlation_id(given) or str(uuid.uuid4())

        def with_id(start: Message) -> None:
            MutableHeaders(scope=start)[CORRELATION_HEADER] = the_id

        token = _correlation_id.set(the_id)
        try:
            await self.app(scope, receive, on_start(send, with_id))
        finally:
            _correlation_id.reset(token)


# --- dispatch by family ------------------------------------------------------------------

FAMILIES: dict[str, Renderer] = {
    "/v0/pipelines": render_feldera,
    "/v0/config": render_feldera,  # Feldera's instance configuration (feldera_config.py)
    "/v0/api-keys": render_feldera,
    "/v0/api_keys": render_feldera,
    "/v0/watch": render_feldera,  # the pipeline streams (pipeline_events.py)
    "/v0/stream-tokens": render_feldera,
    "/api/v1/jobs": render_marquez,
    "/api/v1/lineage": render_marquez,  # OpenLineage events (openlineage.py)
    "/pipelines/v0": render_esper,
    "/v0/runs": render_esper,
    "/api/v1/configs": render_factflow,
    "/api/v1/executions": render_factflow,
}

# Families whose request-validation errors stay FastAPI's 422 HTTPValidationError (seed
# 004 documents it: a non-UUID id is 422 there).
FASTAPI_VALIDATION_FAMILIES: Final[frozenset[Renderer]] = frozenset({render_factflow})
# Families whose responses carry X-Correlation-ID.
CORRELATED_FAMILIES: Final[frozenset[Renderer]] = frozenset({render_factflow})


def family_of(path: str) -> Renderer | None:
    """The renderer of the longest registered prefix that `path` starts with."""
    matches = [
        prefix for prefix in FAMILIES if path == prefix or path.startswith(prefix.rstrip("/") + "/")
    ]
    return FAMILIES[max(matches, key=len)] if matches else None


def _validation_summary(error: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    # Only the JSON-safe parts: `input` and `ctx` may hold arbitrary objects.
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in error.errors()
    ]
    summary = "; ".join(f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in errors)
    return summary, errors


def render_error(path: str, error: DomainError) -> Response:
    """`error` answered on `path`: in its family's shape, else FastAPI's `{"detail"}`."""
    render = family_of(path)
    if render is None:
        return JSONResponse(
            {"detail": error.message},
            status_code=error.http_status,
            headers=retry_headers(error.http_status),
        )
    return render(error.http_status, error.error_code, error.message, error.details)


async def _on_domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    return render_error(request.url.path, error)


async def _on_validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    render = family_of(request.url.path)
    if render is None or render in FASTAPI_VALIDATION_FAMILIES:
        return await request_validation_exception_handler(request, error)
    summary, errors = _validation_summary(error)
    return render(400, "InvalidRequest", f"Invalid request: {summary}", {"errors": errors})


async def _on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    render = family_of(request.url.path)
    if render is None:
        return await http_exception_handler(request, error)
    code = "".join(word.capitalize() for word in str(error.detail).split()) or "HttpError"
    response = render(error.status_code, code, str(error.detail), None)
    if error.headers:
        response.headers.update(error.headers)
    return response


class RetryAfterOn503(HttpMiddleware):
    """ASGI middleware: a 503 without `Retry-After` gets `Retry-After: 5`."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, on_start(send, _retry_after_on_503))


def _retry_after_on_503(start: Message) -> None:
    if start["status"] == 503:
        headers = MutableHeaders(scope=start)
        if "retry-after" not in headers:
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)


def install_error_handling(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_middleware(RetryAfterOn503)
    app.add_middleware(CorrelationId)


__all__ = [
    "CORRELATED_FAMILIES",
    "CORRELATION_HEADER",
    "FAMILIES",
    "FASTAPI_VALIDATION_FAMILIES",
    "RETRY_AFTER",
    "CorrelationId",
    "correlation_id",
    "domain_error_response",
    "factflow_error",
    "family_of",
    "feldera_response",
    "install_error_handling",
    "invalid_query_parameter",
    "parse_choice",
    "render_error",
    "render_esper",
    "render_factflow",
    "render_feldera",
    "render_marquez",
    "retry_headers",
]
