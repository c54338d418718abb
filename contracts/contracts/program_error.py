"""A pipeline's `program_error` in Feldera's shape (ProgramError), computed in one place.

Our program is a config document and its validation plays the part of Feldera's SQL
compilation (docs/pipeline-lifecycle.md, "Feldera's SDK"), so the validation report is
told as `sql_compilation`: one compiler message per issue (its code as `error_type`, its
path in the document as the `snippet`, since a config document has no SQL lines to point
at) and the whole report beside them as `validation_report`. There is no Rust
compilation and no system error. The Pipeline aggregate and the pipelines read model
both answer it from here.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]


def compiler_message(issue: JsonObject) -> JsonObject:
    """One ValidationIssue as a Feldera SqlCompilerMessage."""
    return {
        "start_line_number": 0,
        "start_column": 0,
        "end_line_number": 0,
        "end_column": 0,
        "warning": issue.get("severity") == "warning",
        "error_type": issue.get("code", ""),
        "message": f"{issue.get('message', '')} {issue.get('suggestion', '')}".strip(),
        "snippet": f"at {issue.get('path', '')}",
    }


def program_error(program_status: str, report: JsonObject | None) -> JsonObject:
    """`program_error` for a program in `program_status` (Pending, Success, SqlError)
    whose validation answered `report` (a ValidationReport as JSON; None when the program
    is a config named by id, which only ever holds a valid document)."""
    if program_status == "Pending":
        sql = None
    else:
        issues = [] if report is None else list(report.get("issues", []))
        sql = {
            "exit_code": 0 if program_status == "Success" else 1,
            "messages": [compiler_message(issue) for issue in issues],
            "validation_report": report,
        }
    return {"sql_compilation": sql, "rust_compilation": None, "system_error": None}


__all__ = ["compiler_message", "program_error"]
