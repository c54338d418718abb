"""An archive of messages as the wire carried them at a release: one JSON file per
archived release under tests/contracts/wire_archive/, holding every command (from
tests/contracts/samples.py) and result (tests/contracts/test_wire_results.py) with its
key, headers and value exactly as encoded then.

The archive is never regenerated for a release already in it: its point is that messages
written by an older `pipeline-contracts` still decode after a change (the compatibility
rules in the contracts package's README). A new release adds its own file:

    uv run --frozen python -m tests.contracts.wire_archive 1.1
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from contracts import encode_command, encode_result
from contracts.envelope import KafkaRecord

ARCHIVE = Path(__file__).parent / "wire_archive"
# Fixed so the archive's bytes do not depend on when it was written.
_ARCHIVED_AT = "2026-12-03T00:00:00Z"


def record_document(record: KafkaRecord) -> dict[str, Any]:
    return {
        "key": record.key.decode(),
        "headers": [[name, value.decode()] for name, value in record.headers],
        "value": orjson.loads(record.value),
    }


def to_record(document: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The archived value and headers, as a consumer receives them."""
    headers = [(name, value.encode()) for name, value in document["headers"]]
    return orjson.dumps(document["value"]), headers


def archived_releases() -> list[Path]:
    return sorted(ARCHIVE.glob("*.json"))


def current_messages() -> dict[str, list[dict[str, Any]]]:
    from datetime import datetime

    from tests.contracts.samples import SAMPLES
    from tests.contracts.test_wire_results import RESULTS

    at = datetime.fromisoformat(_ARCHIVED_AT)
    commands = [
        record_document(encode_command(cmd, command_id=f"archived-{i}", time=at))
        for i, (cmd, _) in enumerate(SAMPLES)
    ]
    results = [record_document(encode_result(result, time=at)) for result in RESULTS]
    return {"commands": commands, "results": results}


def write(release: str) -> Path:
    path = ARCHIVE / f"{release}.json"
    if path.exists():
        raise SystemExit(f"{path} exists: an archived release is never rewritten")
    path.write_bytes(orjson.dumps(current_messages(), option=orjson.OPT_INDENT_2) + b"\n")
    return path


if __name__ == "__main__":
    print(write(sys.argv[1]))
