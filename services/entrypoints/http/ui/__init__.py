"""The web console, served by the `api` role under `/ui` (docs/console.md).

Server-rendered Jinja2 pages with htmx (vendored in static/, nothing from a CDN): each
page and each button calls the JSON API in-process with the user's key (calls.py), so
the console shows what the API answers and sends the commands the API sends, refusals
included. It is a FastAPI app of its own mounted in the API app, so the API's app-wide
`Authorization` dependency does not apply to it: the console's own login (session.py)
does, and its calls into the API are then authenticated as any client's.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from services.entrypoints.http.ui import configs, executions, home, pipelines, runs, session
from services.entrypoints.http.ui.calls import Refusal
from services.entrypoints.http.ui.pages import LoginNeeded, PageRefused, not_found
from services.entrypoints.http.ui.rendering import PREFIX, STATIC


async def _login_needed(request: Request, _: Exception) -> Response:
    login = f"{PREFIX}/login"
    if session.is_htmx(request):
        # htmx follows HX-Redirect with a full page load; a 303 would be swapped in place.
        return Response(status_code=204, headers={"HX-Redirect": login})
    return RedirectResponse(login, status_code=303)


async def _bad_request(request: Request, _: Exception) -> Response:
    """A console URL with an id that is no id (FastAPI's 422): no such page."""
    return not_found(request, Refusal(404, "NotFound", f"No console page at {request.url.path}"))


async def _http_error(request: Request, error: Exception) -> Response:
    """A console URL that names no page: a page saying so."""
    assert isinstance(error, HTTPException)
    message = f"No console page at {request.url.path}" if error.status_code == 404 else ""
    refusal = Refusal(
        error.status_code,
        "NotFound" if error.status_code == 404 else f"HTTP{error.status_code}",
        message or str(error.detail),
    )
    return not_found(request, refusal)


async def _page_refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, PageRefused)
    return not_found(request, error.refusal)


def create_console(api: FastAPI) -> FastAPI:
    """The console app for the API app `api` (whose state its pages read)."""
    console = FastAPI(
        title="pipeline-service console", openapi_url=None, docs_url=None, redoc_url=None
    )
    console.state.api = api
    console.state.sessions = session.Sessions()
    console.add_exception_handler(LoginNeeded, _login_needed)
    console.add_exception_handler(HTTPException, _http_error)
    console.add_exception_handler(PageRefused, _page_refused)
    console.add_exception_handler(RequestValidationError, _bad_request)
    console.include_router(home.router)
    console.include_router(pipelines.router)
    console.include_router(configs.router)
    console.include_router(executions.router)
    console.include_router(runs.router)
    console.mount("/static", StaticFiles(directory=STATIC), name="static")
    return console


def install_console(app: FastAPI) -> None:
    """Mount the console at PREFIX in the API app."""
    app.mount(PREFIX, create_console(app), name="console")


__all__ = ["PREFIX", "create_console", "install_console"]
