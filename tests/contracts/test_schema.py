"""The committed JSON Schemas in contracts/schemas/ match the models."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import orjson

from contracts import COMMANDS, RunStatus
from contracts.schema import MESSAGES, SCHEMA_DIR, drift, rendered, write


def test_committed_schemas_match_the_models() -> None:
    stale = drift()
    assert stale == [], (
        f"JSON Schemas out of date: {stale}. Run `uv run python -m contracts.schema` and commit."
    )


def test_every_message_has_a_schema_file() -> None:
    expected = {*COMMANDS, "CommandAccepted", "CommandRejected", "LifecycleEvent"}
    expected |= {"ErrorBody", "ValidationReport"}
    assert set(MESSAGES) == expected
    assert {p.stem for p in SCHEMA_DIR.glob("*.json")} == expected


def test_drift_is_detected_and_repaired(tmp_path: Path) -> None:
    folder = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, folder)
    start = folder / "StartPipeline.json"
    schema = orjson.loads(start.read_bytes())
    del schema["properties"]["dismiss_error"]
    start.write_bytes(orjson.dumps(schema))
    (folder / "RemovedCommand.json").write_text("{}")
    (folder / "StopPipeline.json").unlink()

    assert drift(folder) == ["RemovedCommand.json", "StartPipeline.json", "StopPipeline.json"]
    assert write(folder) == ["RemovedCommand.json", "StartPipeline.json", "StopPipeline.json"]
    assert drift(folder) == []
    assert not (folder / "RemovedCommand.json").exists()


def test_commands_forbid_extra_fields_in_their_schema() -> None:
    for name in COMMANDS:
        assert orjson.loads(rendered()[f"{name}.json"])["additionalProperties"] is False


def test_run_status_schema_pattern_accepts_any_case_and_nothing_else() -> None:
    schema = orjson.loads(rendered()["UpdateRunStatus.json"])
    pattern = re.compile(schema["properties"]["status"]["pattern"])
    for status in RunStatus:
        for spelling in (status.value, status.upper(), status.capitalize()):
            assert pattern.fullmatch(spelling), spelling
    for bad in ("cancel", "runningx", "", " running"):
        assert not pattern.fullmatch(bad), bad
