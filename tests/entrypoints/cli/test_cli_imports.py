"""The CLI imports lazily: `pipelines --help` loads none of the service's heavy parts (the
HTTP app, FastAPI, FastStream, aiokafka, eventsourcing, psycopg, the roles), and `send`
loads the Kafka client but still nothing of the HTTP app, the event store or the roles.
Checked in a fresh interpreter through `sys.modules`, never by timing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from services.entrypoints.cli.run import ROLE_NAMES
from services.entrypoints.roles import ROLES

REPO = Path(__file__).resolve().parents[3]

# Each is a top-level package or one of ours; a submodule loaded counts as the package.
NEVER_FOR_HELP = (
    "fastapi",
    "faststream",
    "uvicorn",
    "aiokafka",
    "eventsourcing",
    "psycopg",
    "pydantic_settings",
    "services.entrypoints.http",
    "services.entrypoints.roles",
    "services.runtimes",
    "services.adapters",
)
NEVER_FOR_SEND = (
    "fastapi",
    "faststream",
    "uvicorn",
    "eventsourcing",
    "psycopg",
    "services.entrypoints.http",
    "services.entrypoints.roles",
    "services.runtimes",
    "services.adapters.eventstore",
)

# Runs the CLI as the `pipelines` script does, then prints what it had imported.
_PROBE = """
import sys
import orjson
from services.entrypoints.cli import app
try:
    app(sys.argv[1:], prog_name="pipelines")
except SystemExit as exit:
    code = exit.code
sys.stdout.flush()
print(orjson.dumps({"code": code, "modules": sorted(sys.modules)}).decode())
"""


def run_probe(*args: str, **env: str) -> tuple[int, str, set[str], str]:
    """(exit code, what the CLI printed, the modules it had imported, stderr)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        env={**clean, "PYTHONPATH": str(REPO), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    *printed, last = done.stdout.rstrip("\n").split("\n")
    probe = orjson.loads(last)
    return probe["code"], "\n".join(printed), set(probe["modules"]), done.stderr


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(
        name for name in names if any(m == name or m.startswith(f"{name}.") for m in modules)
    )


def test_help_imports_nothing_heavy() -> None:
    code, out, modules, err = run_probe("--help")
    assert code == 0, err
    assert "send" in out and "api-keys" in out  # the help really was printed
    assert loaded(modules, NEVER_FOR_HELP) == []


def test_every_sub_command_help_imports_nothing_heavy() -> None:
    for command in (["send"], ["serve"], ["events", "tail"], ["api-keys", "create"]):
        code, out, modules, err = run_probe(*command, "--help")
        assert code == 0, err
        assert "Usage: pipelines" in out
        assert loaded(modules, NEVER_FOR_HELP) == [], command


def test_send_loads_the_kafka_client_and_nothing_of_the_service() -> None:
    # Nothing listens on port 1: the command is built, the bus fails to connect.
    code, _, modules, err = run_probe(
        "send", "CreatePipeline", "--name", "p1", PIPELINES_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"
    )
    assert code == 2, err
    assert "is the service running?" in err
    assert "aiokafka" in modules  # it got as far as the broker
    assert loaded(modules, NEVER_FOR_SEND) == []


def test_the_cli_knows_every_role() -> None:
    # The help text and `health` read ROLE_NAMES so as not to import every role.
    assert tuple(ROLES) == ROLE_NAMES
