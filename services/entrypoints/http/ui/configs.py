"""Configs: the list, one config (its document as YAML, its validation report with every
issue at its path, a run button), and the editor that creates or updates one.

The editor validates as you type: htmx posts the text to `/ui/configs/validate` half a
second after the last key, which answers the report of `POST /api/v1/configs/validate`
(the command handler's own validator). Saving is `POST /api/v1/configs?name=` or
`PUT /api/v1/configs/{id}` with the text as YAML; a refused save shows its report.
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.entrypoints.http.ui.calls import Answer
from services.entrypoints.http.ui.pages import ConsoleUser, PagePost, body_of, done, go
from services.entrypoints.http.ui.rendering import as_yaml, render
from services.entrypoints.http.ui.session import form_of

router = APIRouter(prefix="/configs")

YAML: Final = {"Content-Type": "application/yaml"}
PREFIX: Final = "/api/v1/configs"

STARTER: Final = """\
# A config document (docs/validation-codes.md); examples/orders.yaml is a full one.
routes: {}
"""


@router.get("", response_class=HTMLResponse)
async def config_list(request: Request, console: ConsoleUser, name: str = "") -> HTMLResponse:
    answer = await console.api.get(PREFIX, name=name, limit=200)
    body = answer.body if answer.ok else {}
    return render(
        request,
        "configs.html",
        configs=body.get("configs", []),
        total=body.get("total", 0),
        name=name,
        refusal=answer.refusal,
    )


@router.get("/new", response_class=HTMLResponse)
async def new_config(request: Request, console: ConsoleUser) -> HTMLResponse:
    return render(request, "config_edit.html", config=None, text=STARTER, report=None)


@router.get("/{config_id}", response_class=HTMLResponse)
async def config_page(
    request: Request, config_id: UUID, console: ConsoleUser, min_version: int | None = None
) -> HTMLResponse:
    config = body_of(await console.api.get(f"{PREFIX}/{config_id}", min_version=min_version))
    runs = await console.api.get("/api/v1/executions", config_id=str(config_id), limit=20)
    return render(
        request,
        "config.html",
        config=config,
        text=_text_of(config),
        executions=runs.body.get("executions", []) if runs.ok else [],
    )


@router.get("/{config_id}/edit", response_class=HTMLResponse)
async def edit_config(request: Request, config_id: UUID, console: ConsoleUser) -> HTMLResponse:
    config = body_of(await console.api.get(f"{PREFIX}/{config_id}"))
    return render(
        request,
        "config_edit.html",
        config=config,
        text=_text_of(config),
        report=config.get("validation_report"),
    )


def _text_of(config: dict[str, Any]) -> str:
    document = config.get("document")
    return as_yaml(document) if document is not None else str(config.get("config_yaml") or "")


@router.post("/validate", response_class=HTMLResponse)
async def validate(request: Request, console: PagePost) -> HTMLResponse:
    form = await form_of(request)
    answer = await console.api.post(
        f"{PREFIX}/validate", content=form.get("document", ""), headers=YAML
    )
    if answer.refusal is not None:
        return render(request, "_refusal.html", refusal=answer.refusal)
    return render(request, "_report.html", report=answer.body, live=True)


@router.post("", response_class=HTMLResponse)
async def create_config(request: Request, console: PagePost) -> Response:
    form = await form_of(request)
    answer = await console.api.post(
        PREFIX,
        params={"name": form.get("name", "").strip()},
        content=form.get("document", ""),
        headers=YAML,
    )
    return _saved(request, answer)


@router.post("/{config_id}", response_class=HTMLResponse)
async def update_config(request: Request, config_id: UUID, console: PagePost) -> Response:
    form = await form_of(request)
    answer = await console.api.request(
        "PUT",
        f"{PREFIX}/{config_id}",
        params={"name": form.get("name", "").strip()},
        content=form.get("document", ""),
        headers=YAML,
    )
    return _saved(request, answer)


def _saved(request: Request, answer: Answer) -> Response:
    if answer.ok:
        return go(f"/configs/{answer.body['id']}", answer)
    # ConfigValidationFailed carries the report beside the error fields.
    body = answer.body if isinstance(answer.body, dict) else {}
    report = body if "issues" in body else None
    return render(request, "_save_refused.html", refusal=answer.refusal, report=report)


@router.post("/{config_id}/run", response_class=HTMLResponse)
async def run_config(request: Request, config_id: UUID, console: PagePost) -> Response:
    form = await form_of(request)
    answer = await console.api.post(
        f"{PREFIX}/{config_id}/run",
        params={"tag": form.get("tag", "").strip() or None},
        json=None,
    )
    if answer.ok:
        return go(f"/executions/{answer.body['id']}", answer)
    return done(request, answer, "")


__all__ = ["router"]
