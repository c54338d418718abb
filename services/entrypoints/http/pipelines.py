"""Seeds 000/001 (Feldera's pipeline endpoints), the writes: each request becomes one
command; its result is answered with the seed's status code and body.

Query parameters are read as text and parsed here, so a bad value gets Feldera's own
error shape (FastAPI would answer 422): `initial` is checked the way Feldera's handler
does (405 UnsupportedPipelineAction); booleans and `bootstrap_policy`, which Feldera's
query extractor parses before its handler runs, give a 400 first.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import Field

from contracts import commands as c
from contracts.pipeline_commands import PipelineFields
from contracts.statuses import BootstrapPolicy, InitialStatus, RuntimeDesiredStatus
from domain import pipeline_errors
from services.entrypoints.http import error_docs
from services.entrypoints.http.errors import invalid_query_parameter, parse_choice
from services.entrypoints.http.pipeline_writes_seen import note_write
from services.entrypoints.http.submit import (
    SUBMIT_ERRORS,
    VERSION_HEADER,
    IdempotencyKey,
    submit,
)

router = APIRouter(prefix="/v0/pipelines", tags=["pipelines"])

# Read as text and parsed here (Feldera's 400 and 405); the schemas document what parses.
BoolParam = Annotated[
    str | None,
    Query(
        description="`true` or `false`",
        examples=["true"],
        json_schema_extra={"enum": ["true", "false"]},
    ),
]

_BOOLEANS: Final = {"true": True, "false": False}
_ERRORS: Final = (404, *SUBMIT_ERRORS)


class PipelineCreate(PipelineFields):
    """`POST /v0/pipelines` and `PUT /v0/pipelines/{name}` (Feldera's PostPutPipeline):
    the program is `config_id`, a Config of its own, or `program_code`, a config document
    as YAML or JSON text, which becomes a config the pipeline owns. The other fields are
    kept and answered back as given (docs/pipeline-lifecycle.md, "Feldera's SDK")."""

    name: str = Field(min_length=1, description="Unique pipeline name")
    description: str = ""

    def fields(self) -> dict[str, Any]:
        """Every field, an absent one as its empty value (the whole pipeline is given)."""
        return {
            **self.model_dump(),
            "udf_rust": self.udf_rust or "",
            "udf_toml": self.udf_toml or "",
            "program_config": self.program_config or {},
            "runtime_config": self.runtime_config or {},
            "tags": self.tags or [],
        }


class PipelinePatch(PipelineFields):
    """`PATCH /v0/pipelines/{name}` (Feldera's PatchPipeline): a field absent or null keeps
    its value."""

    name: str | None = Field(default=None, min_length=1, description="A new name")


# --- query parameters ----------------------------------------------------------------------


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    value = _BOOLEANS.get(raw.lower())
    if value is None:
        raise invalid_query_parameter(name, raw, "true or false")
    return value


def parse_initial(raw: str | None) -> InitialStatus:
    if raw is None:
        return InitialStatus.RUNNING
    try:
        return InitialStatus(raw)
    except ValueError:
        raise pipeline_errors.unknown_initial(raw) from None


async def write(
    request: Request,
    command: c.Command,
    idempotency_key: str | None,
    name: str,
    *,
    deleted: bool = False,
    renamed_from: str | None = None,
) -> Response:
    """Submit `command`; an accepted one is remembered for the reads of `name` that follow
    (pipeline_writes_seen.py: Feldera's clients read right after writing), and a rename
    as the old name's end."""
    response = await submit(request, command, idempotency_key)
    note_write(request, response, name, deleted=deleted)
    if renamed_from not in (None, name):
        note_write(request, response, renamed_from, deleted=True)
    return response


# --- endpoints -----------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    summary="Create a pipeline",
    responses=error_docs.feldera(*_ERRORS),
)
async def post_pipeline(
    request: Request, body: PipelineCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    command = c.CreatePipeline(**body.fields())
    return await write(request, command, idempotency_key, body.name)


@router.put(
    "/{pipeline_name}",
    status_code=200,
    summary="Create or fully replace a pipeline",
    description="201 with the new pipeline when none holds the name, else 200: every field "
    "absent from the body takes its empty value (a program given neither as `program_code` "
    "nor as `config_id` is kept).",
    responses={201: {"description": "Created"}, **error_docs.feldera(*_ERRORS)},
)
async def put_pipeline(
    request: Request,
    pipeline_name: str,
    body: PipelineCreate,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    command = c.UpdatePipeline(pipeline_name=pipeline_name, **body.fields(), create_if_missing=True)
    return await write(request, command, idempotency_key, body.name, renamed_from=pipeline_name)


@router.patch(
    "/{pipeline_name}",
    summary="Update a pipeline",
    description="Only the fields given change; the name, the program and the runtime "
    "config only while the pipeline is stopped (400 UpdateRestrictedToStopped).",
    responses=error_docs.feldera(*_ERRORS),
)
async def patch_pipeline(
    request: Request,
    pipeline_name: str,
    body: PipelinePatch,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    command = c.UpdatePipeline(pipeline_name=pipeline_name, **body.model_dump())
    new_name = body.name or pipeline_name
    return await write(request, command, idempotency_key, new_name, renamed_from=pipeline_name)


@router.delete(
    "/{pipeline_name}",
    summary="Delete a pipeline",
    response_class=Response,  # 200 with an empty body, as Feldera answers
    responses=error_docs.feldera(*_ERRORS),
)
async def delete_pipeline(
    request: Request, pipeline_name: str, idempotency_key: IdempotencyKey = None
) -> Response:
    command = c.DeletePipeline(pipeline_name=pipeline_name)
    return await write(request, command, idempotency_key, pipeline_name, deleted=True)


@router.post(
    "/{pipeline_name}/start",
    status_code=202,
    summary="Start the pipeline",
    responses=error_docs.feldera(405, *_ERRORS),
)
async def post_start(
    request: Request,
    pipeline_name: str,
    initial: Annotated[
        str | None,
        Query(
            description="standby, paused or running (the default)",
            json_schema_extra={"enum": list(InitialStatus)},
        ),
    ] = None,
    bootstrap_policy: Annotated[
        str | None,
        Query(
            description="allow, reject or await_approval (the default)",
            json_schema_extra={"enum": list(BootstrapPolicy)},
        ),
    ] = None,
    dismiss_error: BoolParam = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    # Feldera's query extractor parses the policy and the boolean before its handler
    # checks `initial`: a bad one of those is the 400 first.
    policy = parse_choice(
        "bootstrap_policy", bootstrap_policy, BootstrapPolicy, BootstrapPolicy.AWAIT_APPROVAL
    )
    dismiss = parse_bool("dismiss_error", dismiss_error, True)
    command = c.StartPipeline(
        pipeline_name=pipeline_name,
        initial=parse_initial(initial),
        bootstrap_policy=policy,
        dismiss_error=dismiss,
    )
    return await write(request, command, idempotency_key, pipeline_name)


@router.post(
    "/{pipeline_name}/stop",
    status_code=202,
    summary="Stop the pipeline",
    responses=error_docs.feldera(*_ERRORS),
)
async def post_stop(
    request: Request,
    pipeline_name: str,
    force: BoolParam = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    command = c.StopPipeline(pipeline_name=pipeline_name, force=parse_bool("force", force, False))
    return await write(request, command, idempotency_key, pipeline_name)


def parse_activate_initial(raw: str | None) -> RuntimeDesiredStatus:
    """`/activate?initial=`: a runtime desired status in Feldera's snake case (an unknown
    word is 400 InvalidQueryParameter; one the runtime cannot activate to is the domain's
    400 InvalidActivateStatus)."""
    if raw is None:
        return RuntimeDesiredStatus.RUNNING
    by_word = {status.value.lower(): status for status in RuntimeDesiredStatus}
    found = by_word.get(raw)
    if found is None:
        raise invalid_query_parameter("initial", raw, "one of " + ", ".join(by_word))
    return found


@router.post(
    "/{pipeline_name}/activate",
    status_code=202,
    summary="Activate a standby pipeline",
    description="Standby (or Paused) -> `initial`, running (the default) or paused; the "
    "one way out of Standby (docs/pipeline-lifecycle.md §2.3).",
    responses=error_docs.feldera(*_ERRORS),
)
async def post_activate(
    request: Request,
    pipeline_name: str,
    initial: Annotated[
        str | None,
        Query(
            description="running (the default) or paused",
            json_schema_extra={"enum": [s.value.lower() for s in RuntimeDesiredStatus]},
        ),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    command = c.ActivatePipeline(
        pipeline_name=pipeline_name, initial=parse_activate_initial(initial)
    )
    return await write(request, command, idempotency_key, pipeline_name)


def _simple_action(path: str, model: type[c.PipelineCommand], summary: str, status: int) -> None:
    """An action with no parameters besides the pipeline's name. `status` is the success
    status the OpenAPI document shows; the answer's own comes with the command's result."""

    async def endpoint(
        request: Request, pipeline_name: str, idempotency_key: IdempotencyKey = None
    ) -> Response:
        command = model(pipeline_name=pipeline_name)
        return await write(request, command, idempotency_key, pipeline_name)

    endpoint.__name__ = f"post_{path.strip('/')}"
    router.add_api_route(
        f"/{{pipeline_name}}{path}",
        endpoint,
        methods=["POST"],
        status_code=status,
        summary=summary,
        responses=error_docs.feldera(*_ERRORS),
    )


# path -> (command, summary, the success status Feldera answers with)
SIMPLE_ACTIONS: dict[str, tuple[type[c.PipelineCommand], str, int]] = {
    "/pause": (c.PausePipeline, "Pause the pipeline", 202),
    "/resume": (c.ResumePipeline, "Resume the pipeline", 202),
    "/checkpoint": (c.CheckpointPipeline, "Checkpoint the pipeline", 200),
    "/approve": (c.ApprovePipeline, "Approve the bootstrap of a modified pipeline", 202),
    "/dismiss_error": (c.DismissPipelineError, "Dismiss the deployment error", 200),
    "/clear": (c.ClearPipelineStorage, "Clear the pipeline's storage", 202),
}

for _path, (_model, _summary, _status) in SIMPLE_ACTIONS.items():
    _simple_action(_path, _model, _summary, _status)


__all__ = [
    "SIMPLE_ACTIONS",
    "VERSION_HEADER",
    "PipelineCreate",
    "PipelinePatch",
    "parse_activate_initial",
    "parse_bool",
    "parse_initial",
    "router",
]
