"""What every console page shares: who is logged in, and how an action is answered.

`ConsoleUser` is the dependency of every page but the login: the request's Console
(session.py), or LoginNeeded (the console app redirects to the login page). `PagePost` is
the same for the buttons (POST): the request must come from htmx (`HX-Request`, see
session.py). A read key still reaches the endpoint: the API refuses its write with
InsufficientPermissions and the page shows that, as it shows every refusal.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from services.entrypoints.http.ui.calls import Answer, Refusal
from services.entrypoints.http.ui.rendering import PREFIX, refused, render
from services.entrypoints.http.ui.session import Console, console_of, is_htmx


class LoginNeeded(Exception):
    """No live session: the console app answers with the login page."""


class PageRefused(Exception):
    """What a page is about could not be read: the console app answers with the
    not-found page showing the API's refusal."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def body_of(answer: Answer) -> Any:
    """The body of a read a page cannot do without; PageRefused when it was refused."""
    refusal = answer.refusal
    if refusal is not None:
        raise PageRefused(refusal)
    return answer.body


async def _console(request: Request) -> Console:
    found = await console_of(request)
    if found is None:
        raise LoginNeeded
    request.state.console = found
    return found


async def _page_post(request: Request) -> Console:
    if not is_htmx(request):
        # Not from a console page (a cross-site form cannot set the header): refused the
        # way the API refuses, in the page's error shape.
        raise LoginNeeded
    return await _console(request)


ConsoleUser = Annotated[Console, Depends(_console)]
PagePost = Annotated[Console, Depends(_page_post)]


def segment(value: str) -> str:
    """A name as one path segment of an API path."""
    return quote(value, safe="")


def done(request: Request, answer: Answer, message: str) -> HTMLResponse:
    """An action's answer: what was accepted, or the refusal with its error code."""
    refusal = answer.refusal
    if refusal is not None:
        return refused(request, refusal)
    return render(request, "_accepted.html", message=message, status=answer.status)


def go(path: str, answer: Answer | None = None) -> Response:
    """After an action that made a new page (a run, a replay, a config): htmx loads it,
    with the write's version (`?min_version=`) for the page's first read to wait for, so
    it never finds the read model a moment behind."""
    version = None if answer is None else answer.version
    query = "" if version is None else f"?min_version={version}"
    return Response(status_code=204, headers={"HX-Redirect": f"{PREFIX}{path}{query}"})


def not_found(request: Request, refusal: Refusal) -> HTMLResponse:
    return render(request, "not_found.html", status_code=refusal.status, refusal=refusal)


__all__ = [
    "ConsoleUser",
    "LoginNeeded",
    "PagePost",
    "PageRefused",
    "body_of",
    "done",
    "go",
    "not_found",
    "segment",
]
