"""Runs of seeds 002 and 003 in one list: every run (`GET /v0/runs`, Esper's enterprise
list), each with its status in each vocabulary: the canonical one (seed 003's words,
Esper's `status`), Marquez's run state (`GET /api/v1/jobs/runs/{id}`, seed 002) and, for
a config's execution, FactFlow's (seed 004).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from contracts.statuses import RunStatus
from services.entrypoints.http.ui.pages import ConsoleUser
from services.entrypoints.http.ui.rendering import render
from services.entrypoints.http.ui.session import Console

router = APIRouter(prefix="/runs")

PAGE: Final = 50


async def _with_marquez(console: Console, run: dict[str, Any]) -> dict[str, Any]:
    marquez = await console.api.get(f"/api/v1/jobs/runs/{run['id']}")
    state = marquez.body.get("state") if marquez.ok else None
    return {**run, "marquez_state": state}


@router.get("", response_class=HTMLResponse)
async def run_list(
    request: Request, console: ConsoleUser, status: str = "", offset: int = 0
) -> HTMLResponse:
    answer = await console.api.get("/v0/runs", status=status, limit=PAGE, offset=offset)
    content = answer.body.get("content", {}) if answer.ok else {}
    results = content.get("results", []) if isinstance(content, dict) else []
    runs = await asyncio.gather(*(_with_marquez(console, run) for run in results))
    return render(
        request,
        "runs.html",
        runs=runs,
        total=content.get("count", 0) if isinstance(content, dict) else 0,
        offset=offset,
        page=PAGE,
        status=status,
        statuses=list(RunStatus),
        refusal=answer.refusal,
    )


__all__ = ["router"]
