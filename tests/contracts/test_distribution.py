"""`pipeline-contracts` (contracts/) is installable on its own: a test installs it
into a fresh virtual environment that has nothing else of ours, encodes a command there
the way another service would, and the service's command handler accepts it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts.envelope import KafkaRecord
from contracts.results import CommandAccepted
from services.adapters.kafka.clients import ensure_topics
from services.adapters.kafka.command_bus import CommandBus
from services.settings import Settings
from tests.entrypoints.http.support import api_settings, command_handler

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]

# Run by the fresh environment's Python: what a publishing service writes.
PUBLISHER = """
import importlib.metadata, importlib.util, json, sys
for ours in ("services", "domain", "projections"):
    assert importlib.util.find_spec(ours) is None, ours
from contracts import encode_command
from contracts.pipeline_commands import CreatePipeline
from contracts.topics import Topics
record = encode_command(CreatePipeline(name=sys.argv[2]), source="/billing")
print(json.dumps({
    "requires": importlib.metadata.requires("pipeline-contracts"),
    "topic": Topics(prefix=sys.argv[1]).commands,
    "key": record.key.decode(),
    "value": record.value.decode(),
    "headers": [[k, v.decode()] for k, v in record.headers],
}))
"""


def _uv() -> list[str]:
    # `uv run` names itself in UV; .ci/run puts uv on PATH.
    found = os.environ.get("UV") or shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to build the fresh environment (it runs the suite)")
    return [found]


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("contracts-only") / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT")}
    subprocess.run(
        [*_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [
            *_uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            str(REPO / "contracts"),
        ],
        check=True,
        env=env,
    )
    return python


def _publish_from(python: Path, prefix: str, name: str) -> dict[str, Any]:
    found = subprocess.run(
        [str(python), "-c", PUBLISHER, prefix, name],
        check=True,
        capture_output=True,
        cwd="/",  # not the repository: only what is installed can be imported
    )
    answer: dict[str, Any] = orjson.loads(found.stdout)
    return answer


def test_the_distribution_needs_only_pydantic_orjson_and_uuid6(fresh_python: Path) -> None:
    published = _publish_from(fresh_python, "any", "p")
    requires = published["requires"]
    assert isinstance(requires, list)
    assert sorted(r.split(">")[0].split("<")[0].split("=")[0] for r in requires) == [
        "orjson",
        "pydantic",
        "uuid6",
    ]


async def test_a_command_encoded_with_the_distribution_alone_is_accepted(
    fresh_python: Path, kafka_bootstrap: str, sqlite_url: str
) -> None:
    settings: Settings = api_settings(kafka_bootstrap, sqlite_url)
    published = await asyncio.to_thread(
        _publish_from, fresh_python, settings.topic_prefix, "from-contracts-only"
    )
    assert published["topic"] == settings.topics.commands
    pairs: list[list[str]] = published["headers"]
    record = KafkaRecord(
        key=str(published["key"]).encode(),
        value=str(published["value"]).encode(),
        headers=[(name, value.encode()) for name, value in pairs],
    )
    command_id = dict(pairs)["ce_id"]
    await ensure_topics(settings)
    async with command_handler(settings):
        bus = CommandBus(settings, source="/test", timeout_s=30)
        await bus.start(results=True)
        try:
            result = await bus.send_record(record, command_id, "CreatePipeline")
        finally:
            await bus.stop()
    assert isinstance(result, CommandAccepted), result
    assert result.sent_by == "/billing"
