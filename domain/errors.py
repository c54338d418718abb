"""Domain errors: every rejection has a stable code, a message, details and an HTTP status."""

from __future__ import annotations

from typing import Any

from contracts.errors import ErrorBody


class DomainError(Exception):
    """A command the domain refuses. Carries everything a rejection result needs."""

    def __init__(
        self, error_code: str, message: str, details: Any = None, http_status: int = 400
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.details = details
        self.http_status = http_status

    def body(self) -> ErrorBody:
        return ErrorBody(message=self.message, error_code=self.error_code, details=self.details)

    def __repr__(self) -> str:
        return f"DomainError({self.error_code!r}, {self.message!r})"
