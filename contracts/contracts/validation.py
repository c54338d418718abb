"""Seed 004's config validation report (ValidationReportResponse)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class ValidationIssue(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity
    code: str
    path: str
    message: str
    suggestion: str


class ValidationReport(BaseModel):
    """`is_valid` is true when no errors are present; warnings do not invalidate."""

    model_config = ConfigDict(frozen=True)

    is_valid: bool
    issues: list[ValidationIssue]
    error_count: int
    warning_count: int

    @classmethod
    def of(cls, issues: list[ValidationIssue]) -> ValidationReport:
        """Build a report with errors first, then warnings, and the counts filled in."""
        errors = [i for i in issues if i.severity is Severity.ERROR]
        warnings = [i for i in issues if i.severity is Severity.WARNING]
        return cls(
            is_valid=not errors,
            issues=errors + warnings,
            error_count=len(errors),
            warning_count=len(warnings),
        )
