"""The one HTTP submit path: a request's command onto Kafka, its result answered.

`await submit(request, command, idempotency_key, renderer)` is every write of every API
family. Written once here:

- the command id: the client's `Idempotency-Key` when it sent one (a retried request is
  then the same command, and the handler answers it with the stored result), else new;
- who sent it: the request's API key name, as the command's `ce_authid` (its `sent_by`);
- the size check: a command larger than one command message (`max_message_bytes`) could
  never be applied: 413 PayloadTooLarge, nothing sent; one holding a value the message's
  JSON cannot carry (an integer past 64 bits) is 400 UnencodableRequest;
- sending through the app's CommandBus (`app.state.bus`) and waiting for the result: none
  in time is 503 CommandResultTimeout, naming the command id to retry with; a command
  that could not be published is 503 CommandNotPublished (both with `Retry-After`);
- a result of another kind of command (an `Idempotency-Key` reused for another request)
  is 409 IdempotencyKeyReused, not that command's answer;
- `X-Pipelines-Version`: the version the command left its aggregate at, on acceptances
  and rejections alike (a read sent with it as `X-Min-Version` sees the write);
- errors in the shape of the path's API family (errors.render_error).

Each family keeps only its `Renderer`: how an accepted result becomes its answer (by
default its reply as JSON, an empty body for none) and, if the family has one of its
own, how a rejection does (by default the family's error shape).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Header, Request
from fastapi.responses import JSONResponse, Response

from contracts.cloudevents import encode_command
from contracts.command_base import Command, new_id
from contracts.results import CommandAccepted, CommandRejected, CommandResult
from domain.errors import DomainError
from services.adapters.kafka.command_bus import CommandBus, NotPublished, ResultTimeout
from services.entrypoints.http.config_bodies import body_too_large, message_bytes
from services.entrypoints.http.errors import render_error

API_SOURCE: Final = "/pipelines/api"
VERSION_HEADER: Final = "X-Pipelines-Version"
# What any write may answer besides its own statuses (its `responses=` include them).
SUBMIT_ERRORS: Final = (400, 409, 413, 503)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="The command id: a request repeated with the same key is the same "
        "command and gets the same answer.",
    ),
]


def reply_as_json(result: CommandAccepted) -> Response:
    if result.reply is None:
        return Response(status_code=result.http_status)
    return JSONResponse(result.reply, status_code=result.http_status)


@dataclass(frozen=True)
class Renderer:
    """How a family answers a command's result."""

    accepted: Callable[[CommandAccepted], Response] = reply_as_json
    # None: the rejection in the family's error shape.
    rejected: Callable[[CommandRejected], Response] | None = None


PLAIN: Final = Renderer()


def bus_of(request: Request) -> CommandBus:
    bus: CommandBus = request.app.state.bus
    return bus


def sender_of(request: Request) -> str | None:
    """The name of the API key the request came with (auth.authenticate keeps it): the
    command's sender (`sent_by`, on its events and its result)."""
    key = getattr(request.state, "api_key", None)
    return None if key is None else str(key.name)


async def submit(
    request: Request,
    command: Command,
    idempotency_key: str | None,
    renderer: Renderer = PLAIN,
) -> Response:
    """Send `command` and answer with its result; raises the DomainErrors above (the
    app's handler answers them in the family's shape)."""
    command_id = idempotency_key or str(new_id())
    limit: int = request.app.state.settings.max_message_bytes
    api_key = sender_of(request)
    try:
        record = encode_command(command, command_id=command_id, source=API_SOURCE, api_key=api_key)
    except TypeError as error:  # orjson's: a value JSON on the wire cannot carry
        raise unencodable(error) from None
    size = message_bytes(record)
    if size > limit:
        raise body_too_large(limit, size)
    try:
        result = await bus_of(request).send(command, command_id, api_key=api_key)
    except ResultTimeout as error:
        raise result_timeout(error) from None
    except NotPublished as error:
        raise not_published(error) from None
    if result.command_type not in (None, command.command_type()):
        raise key_reused(command_id, command, result)
    if isinstance(result, CommandAccepted):
        response = renderer.accepted(result)
    elif renderer.rejected is not None:
        response = renderer.rejected(result)
    else:
        refusal = DomainError(result.error_code, result.message, result.details, result.http_status)
        response = render_error(request.url.path, refusal)
    if result.aggregate_version is not None:
        response.headers[VERSION_HEADER] = str(result.aggregate_version)
    return response


# --- the errors of the path --------------------------------------------------------------


def result_timeout(error: ResultTimeout) -> DomainError:
    return DomainError(
        "CommandResultTimeout",
        f"No result for command '{error.command_id}' ({error.command_type}) within "
        f"{error.timeout_s:g} s; it may still be applied. Retry with the header "
        f"'Idempotency-Key: {error.command_id}' to get its result without applying it twice.",
        {
            "command_id": error.command_id,
            "command_type": error.command_type,
            "timeout_s": error.timeout_s,
        },
        503,
    )


def not_published(error: NotPublished) -> DomainError:
    return DomainError(
        "CommandNotPublished",
        f"Command '{error.command_id}' ({error.command_type}) could not be published: "
        f"{error.reason}",
        {"command_id": error.command_id, "command_type": error.command_type},
        503,
    )


def unencodable(error: TypeError) -> DomainError:
    return DomainError(
        "UnencodableRequest",
        f"The request holds a value no command message can carry: {error}",
        {"reason": str(error)},
        400,
    )


def key_reused(command_id: str, command: Command, result: CommandResult) -> DomainError:
    return DomainError(
        "IdempotencyKeyReused",
        f"Idempotency-Key '{command_id}' was used for a {result.command_type} command; "
        f"send this {command.command_type()} with a key of its own.",
        {
            "idempotency_key": command_id,
            "command_type": command.command_type(),
            "used_by": result.command_type,
        },
        409,
    )


__all__ = [
    "API_SOURCE",
    "PLAIN",
    "SUBMIT_ERRORS",
    "VERSION_HEADER",
    "IdempotencyKey",
    "Renderer",
    "bus_of",
    "key_reused",
    "not_published",
    "reply_as_json",
    "result_timeout",
    "submit",
    "unencodable",
]
