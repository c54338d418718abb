"""The error body every rejection carries (Feldera's ErrorResponse shape)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorBody(BaseModel):
    """`{message, error_code, details}`; `details` is determined by `error_code`."""

    model_config = ConfigDict(frozen=True)

    message: str
    error_code: str
    details: Any = None
