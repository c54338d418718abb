"""Pipelines: the list (refreshed every 2 s), one pipeline's page (its statuses and their
history, reloaded on each event of its watch stream: static/console.js), and its buttons.

Every button is the Feldera endpoint of its action (pipelines.py): start
(`?initial=running|paused|standby`), pause, resume, activate, checkpoint, stop
(`?force=false` suspends: checkpoint first; `true` stops at once), clear, dismiss_error,
approve and delete, and create (`POST /v0/pipelines` with a config id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.entrypoints.http.ui.pages import (
    ConsoleUser,
    PagePost,
    body_of,
    done,
    go,
    segment,
)
from services.entrypoints.http.ui.rendering import render
from services.entrypoints.http.ui.session import form_of

router = APIRouter(prefix="/pipelines")

HISTORY_SHOWN: Final = 50


@dataclass(frozen=True)
class Action:
    label: str
    method: str = "POST"
    choice: str | None = None  # the form field whose value becomes the query parameter
    choices: tuple[str, ...] = ()


ACTIONS: Final[dict[str, Action]] = {
    "start": Action("Start", choice="initial", choices=("running", "paused", "standby")),
    "pause": Action("Pause"),
    "resume": Action("Resume"),
    "activate": Action("Activate", choice="initial", choices=("running", "paused")),
    "checkpoint": Action("Checkpoint"),
    "stop": Action("Stop", choice="force", choices=("false", "true")),
    "clear": Action("Clear storage"),
    "dismiss_error": Action("Dismiss error"),
    "approve": Action("Approve bootstrap"),
    "delete": Action("Delete", method="DELETE"),
}


@router.get("", response_class=HTMLResponse)
async def pipeline_list(request: Request, console: ConsoleUser) -> HTMLResponse:
    configs = await console.api.get("/api/v1/configs", limit=1000)
    return render(
        request,
        "pipelines.html",
        pipelines=await _rows(console),
        configs=configs.body.get("configs", []) if configs.ok else [],
    )


@router.get("/table", response_class=HTMLResponse)
async def pipeline_table(request: Request, console: ConsoleUser) -> HTMLResponse:
    return render(request, "_pipeline_table.html", pipelines=await _rows(console))


async def _rows(console: ConsoleUser) -> list[dict[str, object]]:
    answer = await console.api.get("/v0/pipelines")
    return answer.body if answer.ok and isinstance(answer.body, list) else []


@router.post("", response_class=HTMLResponse)
async def create_pipeline(request: Request, console: PagePost) -> Response:
    form = await form_of(request)
    body = {
        "name": form.get("name", ""),
        "description": form.get("description", ""),
        "config_id": form.get("config_id") or None,
    }
    answer = await console.api.post("/v0/pipelines", json=body)
    if answer.ok:
        return go(f"/pipelines/{segment(body['name'] or '')}", answer)
    return done(request, answer, "")


@router.get("/{name}", response_class=HTMLResponse)
async def pipeline_page(
    request: Request, name: str, console: ConsoleUser, min_version: int | None = None
) -> HTMLResponse:
    pipeline = body_of(
        await console.api.get(f"/v0/pipelines/{segment(name)}", min_version=min_version)
    )
    return render(
        request,
        "pipeline.html",
        pipeline=pipeline,
        name=name,
        actions=ACTIONS,
        **await _history(console, name),
    )


@router.get("/{name}/status", response_class=HTMLResponse)
async def pipeline_status(request: Request, name: str, console: ConsoleUser) -> HTMLResponse:
    answer = await console.api.get(f"/v0/pipelines/{segment(name)}")
    refusal = answer.refusal
    if refusal is not None:
        return render(request, "_refusal.html", refusal=refusal)
    return render(
        request, "_pipeline_status.html", pipeline=answer.body, **await _history(console, name)
    )


async def _history(console: ConsoleUser, name: str) -> dict[str, Any]:
    answer = await console.api.get(f"/v0/pipelines/{segment(name)}/events", selector="all")
    events = answer.body if answer.ok and isinstance(answer.body, list) else []
    return {"history": events[:HISTORY_SHOWN], "history_total": len(events)}


@router.post("/{name}/actions/{action}", response_class=HTMLResponse)
async def pipeline_action(request: Request, name: str, action: str, console: PagePost) -> Response:
    spec = ACTIONS.get(action)
    if spec is None:
        return Response(status_code=404)
    form = await form_of(request)
    params: dict[str, str] = {}
    if spec.choice is not None:
        params[spec.choice] = form.get(spec.choice) or spec.choices[0]
    base = f"/v0/pipelines/{segment(name)}"
    path = base if spec.method == "DELETE" else f"{base}/{action}"
    answer = await console.api.request(spec.method, path, params=params)
    if answer.ok and action == "delete":
        return go("/pipelines")
    told = ", ".join(f"{k}={v}" for k, v in params.items())
    return done(request, answer, f"{spec.label}{f' ({told})' if told else ''} accepted")


__all__ = ["ACTIONS", "Action", "router"]
