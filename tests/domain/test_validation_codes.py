"""docs/validation-codes.md and VALIDATION_CODES must describe the same table."""

from __future__ import annotations

import re
from pathlib import Path

from domain.validation import VALIDATION_CODES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "validation-codes.md"
ROW = re.compile(r"^\| ([EW]\d{3}) \| (error|warning) \| (.+?) \|$")


def documented_codes() -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            code, severity, title = match.groups()
            assert code not in rows, f"{code} documented twice"
            rows[code] = (severity, title)
    return rows


def test_docs_table_matches_the_code_table() -> None:
    in_code = {code: (info.severity.value, info.title) for code, info in VALIDATION_CODES.items()}
    assert documented_codes() == in_code


def test_code_letters_match_severity() -> None:
    for code, info in VALIDATION_CODES.items():
        assert code[0] == info.severity.value[0].upper(), code


def test_docs_explain_the_cycle_choice() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert "**W503**" in text and "Warning, not error" in text
