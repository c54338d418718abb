"""The login page, the logout, and the home page: the numbers an operator checks first.

- pipelines by deployment status (`GET /v0/pipelines`);
- executions running now, and failed in the last hour (`GET /api/v1/executions`);
- command results accepted and rejected, and the projection delay: this process's
  metrics (`/metrics`' pipelines_commands and pipelines_projection_delay_seconds). They
  count what the command handler and the projector did in this process: under
  `pipelines dev` (every role in one process) that is everything; an `api` role alone
  has neither and says so rather than showing zeros.

`POST /ui/stream-token` mints a stream token through `POST /v0/stream-tokens` with the
session's key, for the pages' EventSource (the browser holds no key to ask with).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.entrypoints.http.ui.calls import ApiCalls
from services.entrypoints.http.ui.pages import ConsoleUser, PagePost
from services.entrypoints.http.ui.rendering import PREFIX, render
from services.entrypoints.http.ui.session import (
    COOKIE,
    console_of,
    form_of,
    sessions_of,
    verify,
)
from services.observability.metrics import REGISTRY

router = APIRouter()

FAILED_WINDOW: Final = timedelta(hours=1)
FAILED_PAGE: Final = 1000  # the newest failed executions looked at for the last hour


# --- login ---------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    if await console_of(request) is not None:
        return RedirectResponse(f"{PREFIX}/", status_code=303)
    return render(request, "login.html", console=None, problem=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await form_of(request)
    secret = form.get("api_key", "").strip()
    key = await verify(request, secret) if secret else None
    if key is None:
        problem = "That key is not a live API key." if secret else "Paste an API key."
        return render(request, "login.html", status_code=401, console=None, problem=problem)
    session_id = sessions_of(request).open(secret)
    response = RedirectResponse(f"{PREFIX}/", status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=PREFIX,
    )
    return response


@router.post("/logout")
async def logout(request: Request, console: ConsoleUser) -> Response:
    sessions_of(request).close(console.session_id)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@router.post("/stream-token")
async def stream_token(console: PagePost) -> Response:
    answer = await console.api.post("/v0/stream-tokens")
    return JSONResponse(
        answer.body, status_code=answer.status, headers={"Cache-Control": "no-store"}
    )


# --- the numbers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Numbers:
    pipelines: dict[str, int]
    pipelines_total: int
    running: int
    failed_last_hour: int
    commands: dict[str, int] | None  # outcome -> count; None: not measured here
    projection_delay_s: float | None
    projection_batches: int


def _metric_samples() -> tuple[dict[str, int], float, int]:
    outcomes: Counter[str] = Counter()
    delay_sum, delay_count = 0.0, 0
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == "pipelines_commands_total":
                outcomes[sample.labels.get("outcome", "?")] += int(sample.value)
            elif sample.name == "pipelines_projection_delay_seconds_sum":
                delay_sum += sample.value
            elif sample.name == "pipelines_projection_delay_seconds_count":
                delay_count += int(sample.value)
    return dict(outcomes), delay_sum, delay_count


async def numbers(api: ApiCalls) -> Numbers:
    pipelines = await api.get("/v0/pipelines", selector="status")
    rows = pipelines.body if pipelines.ok and isinstance(pipelines.body, list) else []
    by_status = Counter(str(row.get("deployment_status")) for row in rows)
    running = await api.get("/api/v1/executions", status="running", limit=1)
    failed = await api.get("/api/v1/executions", status="failed", limit=FAILED_PAGE)
    since = datetime.now(UTC) - FAILED_WINDOW
    recent = [
        e
        for e in (failed.body.get("executions", []) if failed.ok else [])
        if e.get("completed_at")
        and datetime.fromisoformat(str(e["completed_at"]).replace("Z", "+00:00")) >= since
    ]
    outcomes, delay_sum, delay_count = _metric_samples()
    return Numbers(
        pipelines=dict(sorted(by_status.items())),
        pipelines_total=len(rows),
        running=int(running.body.get("total", 0)) if running.ok else 0,
        failed_last_hour=len(recent),
        commands={"accepted": 0, "rejected": 0, **outcomes} if outcomes else None,
        projection_delay_s=delay_sum / delay_count if delay_count else None,
        projection_batches=delay_count,
    )


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, console: ConsoleUser) -> HTMLResponse:
    return render(request, "home.html", numbers=await numbers(console.api))


@router.get("/numbers", response_class=HTMLResponse)
async def home_numbers(request: Request, console: ConsoleUser) -> HTMLResponse:
    return render(request, "_numbers.html", numbers=await numbers(console.api))


__all__ = ["Numbers", "numbers", "router"]
