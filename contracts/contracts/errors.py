"""Error shapes: the body every rejection carries (Feldera's ErrorResponse) and wire errors."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorBody(BaseModel):
    """`{message, error_code, details}`; `details` is determined by `error_code`."""

    model_config = ConfigDict(frozen=True)

    message: str
    error_code: str
    details: Any = None


class WireErrorCode(StrEnum):
    """Why a message could not be decoded. Stable: clients match on these strings."""

    MALFORMED_MESSAGE = "MalformedMessage"
    MISSING_COMMAND_TYPE = "MissingCommandType"
    UNKNOWN_COMMAND_TYPE = "UnknownCommandType"
    COMMAND_SCHEMA_VIOLATION = "CommandSchemaViolation"
    MESSAGE_TOO_LARGE = "MessageTooLarge"


WIRE_ERROR_HTTP_STATUS: dict[WireErrorCode, int] = {
    WireErrorCode.MALFORMED_MESSAGE: 400,
    WireErrorCode.MISSING_COMMAND_TYPE: 400,
    WireErrorCode.UNKNOWN_COMMAND_TYPE: 400,
    WireErrorCode.COMMAND_SCHEMA_VIOLATION: 400,
    WireErrorCode.MESSAGE_TOO_LARGE: 413,
}


class WireError(Exception):
    """A message that is not a valid command (or result, or event).

    `command_id` is the message's `ce_id` when it had one, so the rejection can still be
    answered; `command_type` is its `ce_type` when known. `details` is JSON-safe.
    """

    def __init__(
        self,
        error_code: WireErrorCode,
        message: str,
        details: Any = None,
        *,
        command_id: str | None = None,
        command_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.details = details
        self.command_id = command_id
        self.command_type = command_type

    @property
    def http_status(self) -> int:
        return WIRE_ERROR_HTTP_STATUS[self.error_code]

    def body(self) -> ErrorBody:
        return ErrorBody(message=self.message, error_code=self.error_code, details=self.details)

    def __repr__(self) -> str:
        return f"WireError({self.error_code.value!r}, {self.message!r})"
