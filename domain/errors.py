"""Domain errors: every rejection has a stable code, a message, details and an HTTP status."""

from __future__ import annotations

from typing import Any

from contracts.errors import ErrorBody

RETRY_AFTER_SECONDS = 5


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


class RetryableError(DomainError):
    """A 503: the API answers it with `Retry-After: {retry_after}`."""

    retry_after: int = RETRY_AFTER_SECONDS

    def __init__(self, error_code: str, message: str, details: Any = None) -> None:
        super().__init__(error_code, message, details, http_status=503)
