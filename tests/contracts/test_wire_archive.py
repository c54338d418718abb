"""Messages archived at earlier releases still decode (tests/contracts/wire_archive.py):
every archived command and result decodes to its type, and every field it carried keeps
its value. A change that breaks one of them is an incompatible change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts import COMMANDS, decode_command, decode_result
from tests.contracts.wire_archive import archived_releases, to_record


def _messages(kind: str) -> list[Any]:
    return [
        pytest.param(message, id=f"{path.stem}-{_header(message, 'ce_type')}-{i}")
        for path in archived_releases()
        for i, message in enumerate(orjson.loads(path.read_bytes())[kind])
    ]


def _header(message: dict[str, Any], name: str) -> str:
    return next(value for key, value in message["headers"] if key == name)


def test_there_is_an_archive_and_it_holds_every_command_type_of_its_release() -> None:
    releases = archived_releases()
    assert releases, "no archived release in tests/contracts/wire_archive/"
    first: list[Path] = releases[:1]
    archived = {_header(m, "ce_type") for m in orjson.loads(first[0].read_bytes())["commands"]}
    # Every type archived then still exists (a removed command is an incompatible change).
    assert archived <= set(COMMANDS), archived - set(COMMANDS)


@pytest.mark.parametrize("message", _messages("commands"))
def test_an_archived_command_decodes_with_every_field_it_carried(message: dict[str, Any]) -> None:
    value, headers = to_record(message)
    decoded = decode_command(value, headers)
    assert decoded.command_type == _header(message, "ce_type")
    assert decoded.command_id == _header(message, "ce_id")
    assert decoded.command.key() in (message["key"], None)
    now = decoded.command.model_dump(mode="json")
    assert {field: now.get(field) for field in message["value"]} == message["value"]


@pytest.mark.parametrize("message", _messages("results"))
def test_an_archived_result_decodes_with_every_field_it_carried(message: dict[str, Any]) -> None:
    value, headers = to_record(message)
    decoded = decode_result(value, headers)
    assert decoded.result.result_type() == _header(message, "ce_type")
    now = decoded.result.model_dump(mode="json")
    assert {field: now.get(field) for field in message["value"]} == message["value"]
