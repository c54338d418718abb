"""The console's Jinja2 templates (templates/) and the filters they use.

Autoescaping is on for every template: everything shown comes from the API, and names,
tags and documents are the users' own text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson
import yaml
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.entrypoints.http.ui.calls import Refusal

PREFIX: Final = "/ui"  # where the API app mounts the console
HERE: Final = Path(__file__).parent
TEMPLATES: Final = HERE / "templates"
STATIC: Final = HERE / "static"

# Status word (any vocabulary, lower case) -> the tone its badge is drawn in. The word is
# always printed too: the colour only repeats it.
TONES: Final[dict[str, str]] = {
    **dict.fromkeys(
        ("running", "provisioned", "completed", "complete", "success", "accepted", "succeeded"),
        "good",
    ),
    **dict.fromkeys(("failed", "failure", "error", "aborted", "rejected", "timeout"), "bad"),
    **dict.fromkeys(("cancelled", "interrupted", "suspended", "stopped", "cleared"), "muted"),
    **dict.fromkeys(("paused", "standby", "pending", "new", "queued", "awaitingapproval"), "wait"),
}


def tone(status: object) -> str:
    word = str(status or "").lower().replace("_", "").replace(" ", "")
    return TONES.get(word, "busy" if word else "muted")


def when(value: object) -> str:
    """An ISO instant as `YYYY-MM-DD HH:MM:SS` UTC (the page's <time> keeps the exact one)."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def as_json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def as_yaml(value: object) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


environment: Final = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(tone=tone, when=when, as_json=as_json, as_yaml=as_yaml)
environment.globals.update(ui=PREFIX)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A template with what every page has: the user (`console`, None on the login page)
    and the URL prefix the console is mounted at."""
    context.setdefault("console", getattr(request.state, "console", None))
    context.setdefault("refusal", None)
    text = environment.get_template(template).render(request=request, **context)
    return HTMLResponse(text, status_code=status_code)


def refused(request: Request, refusal: Refusal) -> HTMLResponse:
    """The structured error of a refused action, as the fragment an action's form shows.
    Answered 200: htmx swaps only 2xx answers by default, and the page must show it."""
    return render(request, "_refusal.html", refusal=refusal)


__all__ = [
    "PREFIX",
    "STATIC",
    "TEMPLATES",
    "as_json",
    "environment",
    "refused",
    "render",
    "tone",
    "when",
]
