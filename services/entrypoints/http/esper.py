"""What seed 003's (Esper's) routers share: the envelope, paging, its query parsing and
its paths, each served with and without a trailing slash.

Answers are Esper's envelope `{code, message, content}`; lists put `{count, previous,
next, results}` in `content` (Django REST Framework's limit/offset paging, which
`pipeline__name` points to). Errors use the same envelope with `content: {error_code,
details}` (the family in errors.py). Query parameters are read as text and parsed here,
so a bad value is Esper's 400, never FastAPI's 422. Without `limit` a page holds
DEFAULT_LIMIT items (the `next` link leads on), at most MAX_LIMIT.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from contracts.results import CommandAccepted
from contracts.statuses import RunStatus
from services.entrypoints.http import error_docs
from services.entrypoints.http.errors import invalid_query_parameter
from services.entrypoints.http.read_your_writes import INTEGER_PATTERN
from services.entrypoints.http.submit import Renderer

PREFIX: Final = "/pipelines/v0"
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
# The largest integer SQLite and PostgreSQL take (an OFFSET past it fails in SQL).
MAX_COUNT: Final = 2**63 - 1

# Read as text and parsed here (Esper's 400); the schemas document what parses.
StatusParam = Annotated[
    str | None,
    Query(
        description="Filter by status, any case: " + ", ".join(RunStatus),
        json_schema_extra={"enum": list(RunStatus)},
    ),
]
LimitParam = Annotated[
    str | None,
    Query(
        description=f"Page size (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})",
        json_schema_extra={"pattern": INTEGER_PATTERN},
    ),
]
OffsetParam = Annotated[
    str | None,
    Query(description="Items to skip (default 0)", json_schema_extra={"pattern": INTEGER_PATTERN}),
]


# --- parsing -------------------------------------------------------------------------------


def parse_status(name: str, raw: str) -> RunStatus:
    try:
        return RunStatus(raw.strip().lower())
    except ValueError:
        expected = "one of " + ", ".join(RunStatus)
        raise invalid_query_parameter(name, raw, expected) from None


def parse_count(name: str, raw: str | None, default: int, low: int, high: int | None) -> int:
    """A count from `low` up (`high` caps it); past MAX_COUNT it is a 400 too: the
    databases could not take it."""
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = low - 1
    if value < low:
        raise invalid_query_parameter(name, raw, f"an integer >= {low}")
    if value > MAX_COUNT:
        raise invalid_query_parameter(name, raw, f"an integer <= {MAX_COUNT}")
    return value if high is None else min(value, high)


@dataclass(frozen=True)
class Window:
    """A list's status filter and page, parsed."""

    status: RunStatus | None
    limit: int
    offset: int


@dataclass
class ListQuery:
    """The query every Esper list takes (a FastAPI dependency: `Depends(ListQuery)`)."""

    status: StatusParam = None
    limit: LimitParam = None
    offset: OffsetParam = None

    def parsed(self) -> Window:
        """The window; raises the 400 DomainError of the first bad parameter."""
        status = None if self.status is None else parse_status("status", self.status)
        return Window(
            status,
            parse_count("limit", self.limit, DEFAULT_LIMIT, 1, MAX_LIMIT),
            parse_count("offset", self.offset, 0, 0, None),
        )


# --- answering -----------------------------------------------------------------------------


def envelope(content: Any, message: str, status: int = 200) -> Response:
    return JSONResponse({"code": status, "message": message, "content": content}, status)


def renderer(message: str) -> Renderer:
    """A command's accepted reply in the envelope; a rejection in the error envelope."""

    def accepted(result: CommandAccepted) -> Response:
        return envelope(result.reply, message, result.http_status)

    return Renderer(accepted=accepted)


def page_links(request: Request, count: int, limit: int, offset: int) -> tuple[str | None, ...]:
    """DRF's LimitOffsetPagination links: (previous, next), each the request's URL with
    another offset, or None at either end."""
    url = request.url
    following = (
        str(url.include_query_params(limit=limit, offset=offset + limit))
        if offset + limit < count
        else None
    )
    if offset <= 0:
        return None, following
    if offset - limit <= 0:
        return str(url.include_query_params(limit=limit).remove_query_params("offset")), following
    return str(url.include_query_params(limit=limit, offset=offset - limit)), following


def page(
    request: Request, window: Window, count: int, results: list[Any], message: str
) -> Response:
    """One page of a list of `count` items in the envelope (`results`: the page's)."""
    previous, following = page_links(request, count, window.limit, window.offset)
    content = {"count": count, "previous": previous, "next": following, "results": results}
    return envelope(content, message)


# --- paths ---------------------------------------------------------------------------------


def add_route(
    router: APIRouter,
    path: str,
    endpoint: Callable[..., Awaitable[Response]],
    method: str,
    summary: str,
    *statuses: int,
) -> None:
    """Both spellings are served (no redirect); the document lists the one without the
    slash, with the errors `statuses` in Esper's shape."""
    for variant in (path, f"{path}/"):
        router.add_api_route(
            variant,
            endpoint,
            methods=[method],
            summary=summary,
            responses=error_docs.esper(*statuses),
            include_in_schema=not variant.endswith("/"),
        )


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_COUNT",
    "MAX_LIMIT",
    "PREFIX",
    "ListQuery",
    "StatusParam",
    "Window",
    "add_route",
    "envelope",
    "page",
    "page_links",
    "parse_count",
    "parse_status",
    "renderer",
]
