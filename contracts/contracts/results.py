"""Command results: one per command, published to the command-results topic.

ce_type is the class name (`CommandAccepted` / `CommandRejected`); the Kafka key is the
command id, so a client reading results finds its answer by key. `http_status` is the
answer the HTTP gateway gives for the command (Feldera answers 202 to lifecycle
actions; its rejections carry 400/404/405/409/503). `sent_by` says who sent the command
(`CloudEventAttributes.sent_by`: an HTTP request's API key name, else the message's
`ce_source`); it is left out when unknown, and a result stored before it existed has none.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from contracts.errors import ErrorBody
from contracts.validation import ValidationReport


class _Result(BaseModel):
    # A reader ignores fields it does not know: the service may add optional ones in a
    # minor release without breaking consumers on an older pipeline-contracts (README).
    model_config = ConfigDict(extra="ignore", frozen=True)

    command_id: str
    aggregate_id: str | None = None
    aggregate_version: int | None = Field(default=None, ge=1)
    event_ids: list[str] = Field(default_factory=list)
    sent_by: str | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Who sent the command: the API key's name over HTTP, else its ce_source",
    )

    @classmethod
    def result_type(cls) -> str:
        return cls.__name__

    def key(self) -> str:
        return self.command_id


class CommandAccepted(_Result):
    """The command was applied (or was already in effect: then `event_ids` is empty).

    `reply` is the body the HTTP gateway returns: any JSON, e.g. Feldera's 202 string
    "Pipeline is starting", or an object such as a created run or a ValidationReport.
    """

    outcome: Literal["accepted"] = "accepted"
    command_type: str
    reply: Any = None
    http_status: int = Field(default=202, ge=100, le=599)


class CommandRejected(_Result):
    """The command was refused; nothing changed.

    `command_type` is `None` only when the message named no type. `error_code`,
    `message` and `details` are the ErrorBody a client sees; `validation_report` is
    set when a config document failed validation (seed 004 embeds it in its 400).
    """

    outcome: Literal["rejected"] = "rejected"
    command_type: str | None
    error_code: str
    message: str
    details: Any = None
    http_status: int = Field(default=400, ge=100, le=599)
    validation_report: ValidationReport | None = None

    def body(self) -> ErrorBody:
        return ErrorBody(message=self.message, error_code=self.error_code, details=self.details)


class ErrorLike(Protocol):
    """What `DomainError` and `WireError` have in common (structural: no import)."""

    @property
    def error_code(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def details(self) -> Any: ...
    @property
    def http_status(self) -> int: ...


def rejection(
    error: ErrorLike | ErrorBody,
    *,
    command_id: str,
    command_type: str | None,
    http_status: int | None = None,
    validation_report: ValidationReport | None = None,
    aggregate_id: str | None = None,
    aggregate_version: int | None = None,
) -> CommandRejected:
    """A CommandRejected carrying `error`'s code, message and details.

    The status is `http_status` when given, else the error's own, else 400 (an
    ErrorBody carries none).
    """
    status = http_status if http_status is not None else getattr(error, "http_status", 400)
    return CommandRejected(
        command_id=command_id,
        command_type=command_type,
        aggregate_id=aggregate_id,
        aggregate_version=aggregate_version,
        error_code=error.error_code,
        message=error.message,
        details=error.details,
        http_status=status,
        validation_report=validation_report,
    )


CommandResult = CommandAccepted | CommandRejected

RESULTS: dict[str, type[CommandAccepted] | type[CommandRejected]] = {
    CommandAccepted.result_type(): CommandAccepted,
    CommandRejected.result_type(): CommandRejected,
}
