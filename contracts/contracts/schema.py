"""JSON Schema of every message, for services not written in Python.

`uv run python -m contracts.schema` writes them to contracts/schemas/ (one file per
message, named after its `ce_type` or model); `--check` only reports drift. A test
fails when the committed files differ from what the models generate.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from contracts.commands import COMMANDS
from contracts.errors import ErrorBody
from contracts.events import LifecycleEvent
from contracts.results import CommandAccepted, CommandRejected
from contracts.validation import ValidationReport

SCHEMA_DIR = Path(__file__).parent / "schemas"

MESSAGES: dict[str, type[BaseModel]] = {
    **COMMANDS,
    "CommandAccepted": CommandAccepted,
    "CommandRejected": CommandRejected,
    "LifecycleEvent": LifecycleEvent,
    "ErrorBody": ErrorBody,
    "ValidationReport": ValidationReport,
}


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The schema of what a consumer accepts (validation mode)."""
    return model.model_json_schema(mode="validation")


def rendered() -> dict[str, bytes]:
    """File name -> file content, exactly as committed."""
    return {
        f"{name}.json": orjson.dumps(schema_of(model), option=orjson.OPT_INDENT_2) + b"\n"
        for name, model in MESSAGES.items()
    }


def drift(folder: Path = SCHEMA_DIR) -> list[str]:
    """File names that are missing, stale or no longer generated."""
    expected = rendered()
    present = {p.name for p in folder.glob("*.json")} if folder.is_dir() else set()
    changed = [n for n, b in expected.items() if n not in present or (folder / n).read_bytes() != b]
    return sorted(changed + [n for n in present if n not in expected])


def write(folder: Path = SCHEMA_DIR) -> list[str]:
    """Write every schema and delete files no model generates; returns what changed."""
    changed = drift(folder)
    folder.mkdir(parents=True, exist_ok=True)
    expected = rendered()
    for name in changed:
        if name in expected:
            (folder / name).write_bytes(expected[name])
        else:
            (folder / name).unlink()
    return changed


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = drift()
        for name in stale:
            print(f"stale: {name}")
        return 1 if stale else 0
    for name in write():
        print(f"updated: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
