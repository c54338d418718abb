"""Config documents as HTTP request bodies (seed 004): media type, size limit and text.

The body is the config document itself, in the format its `Content-Type` names
(MEDIA_TYPES); without one, the validator tells JSON from YAML by the text (see
docs/validation-codes.md, Stages). Any other media type is 415.

Or it is FactFlow's request (FactFlowConfigRequest): an `application/json` object with a
`config_yaml` key, the document as YAML or JSON text beside the config's name and
description. The document itself can have no such key (an unknown top-level key is
E005), so the key tells the two apart. The name may travel in the body or as the `name`
query parameter (Written). A request that does not fit the model (`config_yaml` no text,
an unknown field) is FastAPI's 422, its `loc` under `body`; so is a create naming the
config nowhere, and one naming it differently in both places is 422 at `query.name`.

The body may be no larger than one command message (`Settings.max_message_bytes`): it
travels to the command handler inside one, so a bigger body could never be applied. It
is read in chunks and refused (413) as soon as it passes the limit, whatever its
`Content-Length` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.envelope import KafkaRecord
from contracts.validation import ValidationIssue
from domain.errors import DomainError
from domain.validation_rules import ROOT_PATH, issue


class DocumentFormat(StrEnum):
    JSON = "json"
    YAML = "yaml"
    SNIFF = "sniff"  # no Content-Type: the validator tells them apart


MEDIA_TYPES: Final[dict[str, DocumentFormat]] = {
    "application/json": DocumentFormat.JSON,
    "application/yaml": DocumentFormat.YAML,
    "application/x-yaml": DocumentFormat.YAML,
    "text/yaml": DocumentFormat.YAML,
    "text/x-yaml": DocumentFormat.YAML,
}


def document_format(content_type: str | None) -> DocumentFormat:
    if content_type is None or not content_type.strip():
        return DocumentFormat.SNIFF
    media_type = content_type.split(";", 1)[0].strip().lower()
    found = MEDIA_TYPES.get(media_type)
    if found is None:
        raise DomainError(
            "UnsupportedMediaType",
            f"Unsupported Content-Type '{media_type}': send the config document as "
            f"{', '.join(MEDIA_TYPES)}, or without a Content-Type",
            {"content_type": media_type, "supported": list(MEDIA_TYPES)},
            415,
        )
    return found


def body_too_large(max_bytes: int, size: int | None = None) -> DomainError:
    told = "" if size is None else f" ({size} bytes)"
    return DomainError(
        "PayloadTooLarge",
        f"The request body{told} is larger than the limit of {max_bytes} bytes "
        "(one command message)",
        {"max_bytes": max_bytes, "size": size},
        413,
    )


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, or the 413 DomainError once it passes `max_bytes`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise body_too_large(max_bytes, int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise body_too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def document_text(body: bytes, form: DocumentFormat) -> tuple[str | None, ValidationIssue | None]:
    """(text, None): the text the validator is given; (None, E001 issue): the body cannot
    be a document of the declared format at all (not UTF-8; declared JSON but is not)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, issue(
            "E001",
            ROOT_PATH,
            f"The document is not UTF-8 text: {exc}",
            "Send the document encoded as UTF-8.",
        )
    if form is DocumentFormat.JSON:
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return None, issue(
                "E001",
                ROOT_PATH,
                f"Invalid JSON: {exc}",
                "The body was sent as application/json: send one JSON object, or send "
                "YAML as application/yaml.",
            )
    return text, None


FACTFLOW_KEY: Final = "config_yaml"


class FactFlowConfigRequest(BaseModel):
    """FactFlow's create and update request: the config document as text, beside its
    name and description."""

    # Every field it knows is named here: anything else is a client's mistake to report.
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None,
        min_length=1,
        description="The config's name; or the `name` query parameter. An update without "
        "one keeps the name",
    )
    description: str | None = Field(
        default=None, description="What the config is for; an update without one keeps it"
    )
    config_yaml: str = Field(description="The config document, as YAML or JSON text")


def body_errors(errors: list[Any]) -> RequestValidationError:
    """FastAPI's 422 for errors found in the request body (`loc` under `body`)."""
    return RequestValidationError(
        [
            {key: e[key] for key in ("type", "msg", "input") if key in e}
            | {"loc": ("body", *e["loc"])}
            for e in errors
        ]
    )


def factflow_request(body: bytes, form: DocumentFormat) -> FactFlowConfigRequest | None:
    """FactFlow's request, if the body is one (declared JSON, an object with a
    `config_yaml` key); None for a config document, or for a body that is no JSON at all
    (`document_text` reports that). Raises the 422 for a request that does not fit."""
    if form is not DocumentFormat.JSON:
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict) or FACTFLOW_KEY not in parsed:
        return None
    try:
        return FactFlowConfigRequest.model_validate(parsed)
    except ValidationError as exc:
        raise body_errors(exc.errors()) from exc


@dataclass(frozen=True)
class Written:
    """What a create or update sends: the document's text, the name and the description
    (None: not given), and whether they came as FactFlow's request."""

    text: str
    name: str | None
    description: str | None = None
    factflow: bool = False

    def required_name(self) -> str:
        """The name a create needs; without one, the 422 where the client was to give it."""
        if self.name is not None:
            return self.name
        if self.factflow:
            message = "Field required (in the body, or as the `name` query parameter)"
            raise body_errors([{"type": "missing", "loc": ("name",), "msg": message}])
        raise _query_name_error("missing", "Field required", None)


def _query_name_error(kind: str, message: str, given: str | None) -> RequestValidationError:
    return RequestValidationError(
        [{"type": kind, "loc": ("query", "name"), "msg": message, "input": given}]
    )


def written_of(
    body: bytes, form: DocumentFormat, query_name: str | None
) -> tuple[Written | None, ValidationIssue | None]:
    """(what the body and the `name` query parameter send, None), or (None, E001 issue)
    for a body that is no document (`document_text`). FactFlow's request may name the
    config in the body or in the query, not differently in both (the 422)."""
    request = factflow_request(body, form)
    if request is None:
        text, problem = document_text(body, form)
        return (None, problem) if text is None else (Written(text, query_name), None)
    name = request.name
    if query_name is not None and name is not None and query_name != name:
        message = f"Conflicts with the body's name '{name}': give the name once"
        raise _query_name_error("name_conflict", message, query_name)
    name = query_name if name is None else name
    return Written(request.config_yaml, name, request.description, factflow=True), None


def message_bytes(record: KafkaRecord) -> int:
    """A record's size as the command consumer measures it (contracts.cloudevents)."""
    return len(record.value) + sum(len(name) + len(value) for name, value in record.headers)


__all__ = [
    "FACTFLOW_KEY",
    "MEDIA_TYPES",
    "DocumentFormat",
    "FactFlowConfigRequest",
    "Written",
    "body_errors",
    "body_too_large",
    "document_format",
    "document_text",
    "factflow_request",
    "message_bytes",
    "read_body",
    "written_of",
]
