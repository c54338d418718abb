"""Config documents as HTTP request bodies (seed 004): media type, size limit and text.

The body is the config document itself, in the format its `Content-Type` names
(MEDIA_TYPES); without one, the validator tells JSON from YAML by the text (see
docs/validation-codes.md, Stages). Any other media type is 415.

The body may be no larger than one command message (`Settings.max_message_bytes`): it
travels to the command handler inside one, so a bigger body could never be applied. It
is read in chunks and refused (413) as soon as it passes the limit, whatever its
`Content-Length` says.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import orjson
from fastapi import Request

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


def message_bytes(record: KafkaRecord) -> int:
    """A record's size as the command consumer measures it (contracts.cloudevents)."""
    return len(record.value) + sum(len(name) + len(value) for name, value in record.headers)


__all__ = [
    "MEDIA_TYPES",
    "DocumentFormat",
    "body_too_large",
    "document_format",
    "document_text",
    "message_bytes",
    "read_body",
]
