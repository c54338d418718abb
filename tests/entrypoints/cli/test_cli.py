"""The `pipelines` CLI: `send` against a running handler prints its result; `dev` starts
the embedded broker, prints its address and the topics, serves commands from a second
terminal, and stops cleanly on SIGINT; `health` reads the heartbeat files; field parsing."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from typer.testing import CliRunner

from contracts.cloudevents import decode_result, encode_result
from contracts.pipeline_commands import CreatePipeline, StopPipeline
from contracts.results import CommandAccepted, CommandRejected
from contracts.validation import Severity, ValidationIssue, ValidationReport
from services.adapters.kafka.clients import ensure_topics
from services.entrypoints.cli import app, build_command, parse_fields
from services.entrypoints.cli.send import printed
from services.entrypoints.health import Heartbeat
from services.entrypoints.roles import run_roles
from services.settings import Settings

REPO = Path(__file__).resolve().parents[3]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


async def run_cli(
    *args: str, cwd: Path, env: dict[str, str], timeout_s: float = 60
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.entrypoints.cli",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# --- send against an in-process handler -------------------------------------------------


@pytest.fixture
async def handler_settings(
    kafka_bootstrap: str, sqlite_url: str, topic_name: Any, tmp_path: Path
) -> AsyncIterator[Settings]:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_name("cli"),
        partitions=2,
        event_store_url=sqlite_url,
        consumer_group=f"cli-test-{uuid4().hex[:8]}",
    )
    await ensure_topics(settings)
    stop = asyncio.Event()
    roles = asyncio.create_task(
        run_roles(settings, ["handler", "relay"], stop, heartbeat_dir=tmp_path / "beats")
    )
    yield settings
    stop.set()
    await asyncio.wait_for(roles, 30)


async def test_send_prints_the_accepted_result_and_exits_1_on_a_rejection(
    handler_settings: Settings, tmp_path: Path
) -> None:
    env = cli_env(
        PIPELINES_KAFKA_BOOTSTRAP_SERVERS=handler_settings.kafka_bootstrap_servers or "",
        PIPELINES_TOPIC_PREFIX=handler_settings.topic_prefix,
    )
    code, out, err = await run_cli("send", "CreatePipeline", "--name", "p1", cwd=tmp_path, env=env)
    assert code == 0, err
    created = orjson.loads(out)
    assert created["outcome"] == "accepted"
    assert created["command_type"] == "CreatePipeline"
    assert created["reply"]["name"] == "p1"
    assert created["http_status"] == 201

    code, out, err = await run_cli(
        "send", "StartPipeline", "--pipeline-name", "nope", cwd=tmp_path, env=env
    )
    assert code == 1, err
    rejected = orjson.loads(out)
    assert rejected["outcome"] == "rejected"
    assert rejected["error_code"] == "UnknownPipelineName"

    code, out, err = await run_cli(
        "events", "tail", "--from-beginning", "--limit", "2", cwd=tmp_path, env=env
    )
    assert code == 0, err
    events = [orjson.loads(line) for line in out.splitlines()]
    assert {(e["aggregate_type"], e["event_type"]) for e in events} == {
        ("Pipeline", "Created"),
        ("NameIndex", "Claimed"),
    }
    pipeline = next(e for e in events if e["aggregate_type"] == "Pipeline")
    assert pipeline["aggregate_id"] == created["aggregate_id"]


async def test_send_exits_3_when_no_handler_answers_and_2_without_topics(
    kafka_bootstrap: str, topic_name: Any, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_name("idle"))
    await ensure_topics(settings)  # topics, but no handler reading them
    env = cli_env(
        PIPELINES_KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        PIPELINES_TOPIC_PREFIX=settings.topic_prefix,
    )
    code, out, err = await run_cli(
        "send", "CreatePipeline", "--name", "p1", "--result-timeout", "1", cwd=tmp_path, env=env
    )
    assert code == 3, err
    assert out == ""
    assert "no result within 1.0 s" in err

    env["PIPELINES_TOPIC_PREFIX"] = topic_name("never-created")
    code, out, err = await run_cli("send", "CreatePipeline", "--name", "p1", cwd=tmp_path, env=env)
    assert code == 2, err
    assert out == ""
    assert "is the service running?" in err
    code, out, err = await run_cli("events", "tail", "--limit", "1", cwd=tmp_path, env=env)
    assert code == 2, err
    assert "is the service running?" in err


# --- dev, as an operator runs it ----------------------------------------------------------


def port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


async def test_dev_starts_serves_a_second_terminal_and_stops_on_sigint(tmp_path: Path) -> None:
    env = cli_env(PIPELINES_API_PORT="0")  # dev serves the API; never clash on 8080
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.entrypoints.cli",
        "dev",
        "--heartbeat-dir",
        str(tmp_path / "beats"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("ready"):
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, f"dev exited early: {lines}"
            lines.append(line.decode().strip())
        printed = dict(line.split(": ", 1) for line in lines[:-1])
        bootstrap = printed["kafka bootstrap"].split(" ")[0]
        assert printed["kafka bootstrap"].endswith("(embedded broker)")
        assert printed["topics"] == (
            "pipelines.commands, pipelines.command-results, pipelines.events, "
            "pipelines.commands.dlq"
        )
        assert (tmp_path / ".data" / "bootstrap").read_text().strip() == bootstrap
        assert port_open(bootstrap)

        # A second terminal in the same folder finds the broker through .data/bootstrap.
        code, out, err = await run_cli(
            "send", "CreatePipeline", "--name", "p1", cwd=tmp_path, env=env
        )
        assert code == 0, err
        assert orjson.loads(out)["outcome"] == "accepted"
        code, out, err = await run_cli(
            "send", "StartPipeline", "--pipeline-name", "p1", cwd=tmp_path, env=env
        )
        assert code == 0, err
        assert orjson.loads(out)["reply"] == "Pipeline is starting"
        assert (tmp_path / "beats" / "relay.heartbeat").exists()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)
    rest = (await process.stdout.read()).decode()
    assert process.returncode == 0, (await process.stderr.read()).decode() if process.stderr else ""
    assert rest.strip().endswith("stopped")
    assert not (tmp_path / ".data" / "bootstrap").exists()
    assert (tmp_path / ".data" / "pipelines.db").exists()
    assert not port_open(bootstrap)  # the broker was stopped
    assert not (tmp_path / "beats" / "relay.heartbeat").exists()


def test_serve_without_a_cluster_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PIPELINES_"):
            monkeypatch.delenv(name)
    result = CliRunner().invoke(app, ["serve", "--role", "handler"])
    assert result.exit_code == 2
    assert "PIPELINES_KAFKA_BOOTSTRAP_SERVERS" in result.output


def test_serve_rejects_an_unknown_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINES_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    result = CliRunner().invoke(app, ["serve", "--role", "janitor"])
    assert result.exit_code == 2
    assert "janitor" in result.output


# --- health ---------------------------------------------------------------------------------


def test_health_follows_the_heartbeat_file(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["health", "--role", "relay", "--heartbeat-dir", str(tmp_path), "--max-age", "30"]
    assert runner.invoke(app, args).exit_code == 1  # never started

    beat = Heartbeat("relay", tmp_path)
    beat()
    assert runner.invoke(app, args).exit_code == 0

    old = time.time() - 60
    os.utime(beat.path, (old, old))
    stale = runner.invoke(app, args)
    assert stale.exit_code == 1
    assert "ago" in stale.output

    beat.clear()
    assert runner.invoke(app, args).exit_code == 1
    assert runner.invoke(app, ["health", "--role", "janitor"]).exit_code == 2


# --- field parsing ------------------------------------------------------------------------


def test_fields_are_json_when_they_parse_and_strings_otherwise() -> None:
    config = uuid4()
    assert parse_fields(
        ["--name", "p1", "--config-id", str(config), "--force", "true", "--tags=[1, 2]", "--x"]
    ) == {"name": "p1", "config_id": str(config), "force": True, "tags": [1, 2], "x": True}
    with pytest.raises(ValueError):
        parse_fields(["p1"])


def test_a_command_is_built_from_fields_and_a_numeric_name_stays_text() -> None:
    config = uuid4()
    cmd = build_command("CreatePipeline", ["--name", "p1", "--config-id", str(config)])
    assert cmd == CreatePipeline(name="p1", config_id=UUID(str(config)))
    assert build_command("CreatePipeline", ["--name", "123"]) == CreatePipeline(name="123")
    assert build_command("StopPipeline", ["--pipeline-name", "p", "--force"]) == StopPipeline(
        pipeline_name="p", force=True
    )
    with pytest.raises(ValueError, match="unknown command"):
        build_command("LaunchRocket", [])


def test_a_result_is_printed_as_it_was_on_the_wire_indented() -> None:
    issue = ValidationIssue(
        severity=Severity.ERROR, code="E1", path="$.x", message="bad", suggestion="fix it"
    )
    results = [
        CommandAccepted(
            command_id="c1",
            aggregate_id="a1",
            aggregate_version=2,
            event_ids=["a1:2"],
            command_type="CreatePipeline",
            reply={"name": "p1", "nested": [1, 2.5, None, {"z": True, "a": "é"}]},
            http_status=201,
        ),
        CommandRejected(
            command_id="c2",
            command_type="CreateConfig",
            error_code="InvalidConfig",
            message="no",
            details={"why": ["x"]},
            validation_report=ValidationReport.of([issue]),
        ),
    ]
    for result in results:
        record = encode_result(result)
        wire = orjson.dumps(orjson.loads(record.value), option=orjson.OPT_INDENT_2).decode()
        assert printed(decode_result(record.value, record.headers).result) == wire
