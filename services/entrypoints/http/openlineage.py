"""`POST /api/v1/lineage`: Marquez's OpenLineage endpoint, where an OpenLineage client
(openlineage-python's HttpTransport posts to `<url>/api/v1/lineage`) reports its runs.

The body is checked by the client's models (openlineage_body.py) and sent as a
RecordRunEvent, which moves the run `run.runId` names (services.service_layer.handlers.
openlineage; docs/lineage.md has the mapping). An event taken is 201 with an empty body,
as Marquez answers, whether or not it changed the run: `X-Lineage-Outcome` says which
(`created`, `moved`, `unchanged`, `ignored`) and, for an ignored one, `X-Lineage-Reason`
the run table's refusal (e.g. `RunAlreadyTerminal`). Errors are Marquez's `{code,
message}` (errors.py): 400 `InvalidLineageEvent` for a body that is no RunEvent, 413 for
one larger than a command message, 409 for a runId that names something else.

Without an `Idempotency-Key` the command id is derived from the body's bytes, so a client
re-posting the same event (its transport retries on 5xx) is the same command, answered
from the handler's records.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final
from uuid import NAMESPACE_URL, uuid5

from fastapi import APIRouter, Request
from fastapi.responses import Response

from contracts.results import CommandAccepted
from services.entrypoints.http import error_docs
from services.entrypoints.http.config_bodies import read_body
from services.entrypoints.http.openlineage_body import record_command, run_event
from services.entrypoints.http.submit import SUBMIT_ERRORS, IdempotencyKey, Renderer, submit

PATH: Final = "/api/v1/lineage"
OUTCOME_HEADER: Final = "X-Lineage-Outcome"
REASON_HEADER: Final = "X-Lineage-Reason"
_BODY_IDS: Final = uuid5(NAMESPACE_URL, "urn:pipeline-service:openlineage-body")

router = APIRouter(tags=["runs (Marquez)"])

REQUEST_BODY: Final[dict[str, Any]] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "An OpenLineage RunEvent "
                "(https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent)",
            }
        }
    },
}

_HEADER: Final = {"schema": {"type": "string"}}


def body_command_id(body: bytes) -> str:
    """The same bytes, the same command."""
    return str(uuid5(_BODY_IDS, hashlib.sha256(body).hexdigest()))


def _accepted(result: CommandAccepted) -> Response:
    reply: dict[str, Any] = result.reply or {}
    response = Response(status_code=result.http_status)
    if reply.get("outcome"):
        response.headers[OUTCOME_HEADER] = str(reply["outcome"])
    if reply.get("reason"):
        response.headers[REASON_HEADER] = str(reply["reason"])
    return response


RENDERER: Final = Renderer(accepted=_accepted)


@router.post(
    PATH,
    status_code=201,
    summary="Record an OpenLineage RunEvent (Marquez's lineage endpoint)",
    response_class=Response,
    responses={
        201: {
            "description": "The event was taken (the run created, moved, or left as it was)",
            "headers": {OUTCOME_HEADER: _HEADER, REASON_HEADER: _HEADER},
        },
        **error_docs.marquez(*SUBMIT_ERRORS),
    },
    openapi_extra={"requestBody": REQUEST_BODY},
)
async def post_lineage(request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    body = await read_body(request, request.app.state.settings.max_message_bytes)
    command = record_command(run_event(body))
    return await submit(request, command, idempotency_key or body_command_id(body), RENDERER)


__all__ = ["OUTCOME_HEADER", "PATH", "REASON_HEADER", "body_command_id", "router"]
