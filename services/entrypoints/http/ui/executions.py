"""Executions: the list (filtered by config, status and tag), one execution's page and its
buttons.

The page shows the execution, its stage runs as a timeline (each route's messages in /
out / failed, status and times, drawn against the execution's span), its lineage (root,
parent, replays: `GET .../lineage`) and, while it runs, its live progress: the page's
script opens `GET /api/v1/executions/{id}/events` with a stream token (`POST
/ui/stream-token`) and shows each event as it comes; every event also reloads the
timeline fragment.

Cancel is `POST .../cancel`. Replay is `POST .../replay`: the form is sent first as a dry
run (`dry_run: true`), whose plan (how many messages, to which routes, the first ones) is
shown with a button to confirm, which sends the same body without `dry_run`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from contracts.statuses import ExecutionStatus, ReplaySource
from services.entrypoints.http.ui.calls import Refusal
from services.entrypoints.http.ui.pages import ConsoleUser, PagePost, done, go, not_found
from services.entrypoints.http.ui.rendering import refused, render
from services.entrypoints.http.ui.session import Console, form_of

router = APIRouter(prefix="/executions")

PREFIX: Final = "/api/v1/executions"
PAGE: Final = 50
FINISHED: Final = frozenset({"completed", "failed", "cancelled", "interrupted"})
REPLAY_FIELDS: Final = ("replay_source", "from_stage", "to_route", "only_failed", "tag")


@router.get("", response_class=HTMLResponse)
async def execution_list(
    request: Request,
    console: ConsoleUser,
    config_id: str = "",
    status: str = "",
    tag: str = "",
    offset: int = 0,
) -> HTMLResponse:
    answer = await console.api.get(
        PREFIX, config_id=config_id, status=status, tag=tag, limit=PAGE, offset=offset
    )
    body = answer.body if answer.ok else {}
    configs = await console.api.get("/api/v1/configs", limit=1000)
    return render(
        request,
        "executions.html",
        executions=body.get("executions", []),
        total=body.get("total", 0),
        offset=offset,
        page=PAGE,
        filters={"config_id": config_id, "status": status, "tag": tag},
        statuses=list(ExecutionStatus),
        configs=configs.body.get("configs", []) if configs.ok else [],
        refusal=answer.refusal,
    )


async def _detail(
    console: Console, execution_id: UUID, min_version: int | None = None
) -> dict[str, Any] | Refusal:
    answer = await console.api.get(f"{PREFIX}/{execution_id}", min_version=min_version)
    if answer.refusal is not None:
        return answer.refusal
    execution = answer.body
    stages = await console.api.get(f"{PREFIX}/{execution_id}/stages")
    lineage = await console.api.get(f"{PREFIX}/{execution_id}/lineage")
    stage_runs = stages.body if stages.ok and isinstance(stages.body, list) else []
    return {
        "execution": execution,
        "stages": timeline(execution, stage_runs),
        "lineage": lineage.body if lineage.ok else None,
        "finished": execution.get("status") in FINISHED,
    }


def _instant(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def timeline(execution: dict[str, Any], stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each stage run with where its bar sits in the execution's span (percentages)."""
    begin = _instant(execution.get("started_at")) or datetime.now(UTC)
    end = _instant(execution.get("completed_at")) or datetime.now(UTC)
    span = max((end - begin).total_seconds(), 0.001)
    drawn = []
    for stage in stages:
        started = _instant(stage.get("started_at"))
        ended = _instant(stage.get("ended_at")) or end
        if started is None:
            left, width = 0.0, 0.0
        else:
            left = min(max((started - begin).total_seconds() / span, 0.0), 1.0) * 100
            width = max(min((ended - started).total_seconds() / span * 100, 100 - left), 1.0)
        drawn.append({**stage, "left": round(left, 1), "width": round(width, 1)})
    return drawn


@router.get("/{execution_id}", response_class=HTMLResponse)
async def execution_page(
    request: Request, execution_id: UUID, console: ConsoleUser, min_version: int | None = None
) -> HTMLResponse:
    detail = await _detail(console, execution_id, min_version)
    if isinstance(detail, Refusal):
        return not_found(request, detail)
    config = await console.api.get(f"/api/v1/configs/{detail['execution']['config_id']}")
    document = config.body.get("document") if config.ok else None
    routes = list((document or {}).get("routes", {}))
    return render(
        request,
        "execution.html",
        **detail,
        routes=routes,
        sources=list(ReplaySource),
    )


@router.get("/{execution_id}/detail", response_class=HTMLResponse)
async def execution_detail(
    request: Request, execution_id: UUID, console: ConsoleUser
) -> HTMLResponse:
    detail = await _detail(console, execution_id)
    if isinstance(detail, Refusal):
        return refused(request, detail)
    return render(request, "_execution_detail.html", **detail)


@router.post("/{execution_id}/cancel", response_class=HTMLResponse)
async def cancel(request: Request, execution_id: UUID, console: PagePost) -> Response:
    answer = await console.api.post(f"{PREFIX}/{execution_id}/cancel")
    return done(request, answer, "Cancel accepted")


def replay_body(form: dict[str, str]) -> dict[str, Any] | Refusal:
    """The replay request the form describes (fields left empty are left out)."""
    body: dict[str, Any] = {"replay_source": form.get("replay_source") or "storage"}
    for name in ("from_stage", "to_route", "tag"):
        if form.get(name, "").strip():
            body[name] = form[name].strip()
    body["only_failed"] = form.get("only_failed") in ("on", "true", "1")
    for name, key, kind in (
        ("overrides", "init_payload_overrides", dict),
        ("messages", "messages", list),
    ):
        text = form.get(name, "").strip()
        if not text:
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            return Refusal(400, "InvalidJson", f"{name}: not JSON ({error})")
        if not isinstance(value, kind):
            what = "an object" if kind is dict else "an array"
            return Refusal(400, "InvalidJson", f"{name}: must be a JSON {what}")
        body[key] = value
    return body


@router.post("/{execution_id}/replay", response_class=HTMLResponse)
async def replay(request: Request, execution_id: UUID, console: PagePost) -> Response:
    form = await form_of(request)
    body = replay_body(form)
    if isinstance(body, Refusal):
        return refused(request, body)
    confirmed = form.get("confirm") == "true"
    answer = await console.api.post(
        f"{PREFIX}/{execution_id}/replay", json={**body, "dry_run": not confirmed}
    )
    if answer.refusal is not None:
        return done(request, answer, "")
    if confirmed:
        return go(f"/executions/{answer.body['id']}", answer)
    return render(
        request, "_replay_plan.html", plan=answer.body, form=form, execution_id=execution_id
    )


__all__ = ["REPLAY_FIELDS", "replay_body", "router", "timeline"]
