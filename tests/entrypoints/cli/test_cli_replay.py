"""`pipelines replay` as an operator runs it: a subprocess against the whole service (the
e2e stack: API, command handler, relay with its replay publisher, projector, an
orchestrator, on the real broker and SQLite) replaying a completed run of the README
example. A dry run prints the plan and makes nothing; a storage replay by the parent's tag
with `--watch` prints the accepted child as JSON on stdout and follows it to `completed`;
a manual replay takes `--message` payloads; rejections exit 1 with the handler's error,
no result in time exits 3, bad options exit 2 before anything is sent; `--help` imports
nothing heavy."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any, get_args
from uuid import UUID

import orjson
import pytest
from typer.testing import CliRunner

from contracts.replay_commands import ReplayDirection
from contracts.statuses import ReplaySource
from services.adapters.kafka.clients import ensure_topics
from services.entrypoints.cli import app
from services.entrypoints.cli.replay import Direction, Source
from services.settings import Settings
from tests.entrypoints.cli.test_cli import cli_env, run_cli
from tests.entrypoints.cli.test_cli_imports import NEVER_FOR_HELP, NEVER_FOR_SEND, loaded, run_probe
from tests.entrypoints.http.support import create_api_key
from tests.runtimes.orchestrator.e2e_support import (
    EXECUTIONS,
    Stack,
    module_stack,
    orders_document,
)

pytestmark = pytest.mark.broker

stack = module_stack("cli-replay")


@pytest.fixture(scope="module")
async def parent(stack: Stack) -> tuple[UUID, UUID, str]:
    """(config id, a completed execution of it, its tag)."""
    config_id = await stack.create_config(orders_document())
    tag = f"cli-parent-{uuid.uuid4().hex[:8]}"
    execution_id = await stack.started(config_id, tag=tag)
    await stack.until_status(execution_id, "completed")
    return config_id, execution_id, tag


@pytest.fixture(scope="module")
async def env(stack: Stack) -> dict[str, str]:
    """The CLI's environment: the stack's broker, topics, API and a read key for it."""
    key = await asyncio.to_thread(create_api_key, stack.settings.event_store_url)
    return cli_env(
        PIPELINES_KAFKA_BOOTSTRAP_SERVERS=stack.settings.kafka_bootstrap_servers or "",
        PIPELINES_TOPIC_PREFIX=stack.settings.topic_prefix,
        PIPELINES_API_URL=str(stack.client.base_url),
        PIPELINES_API_KEY=key,
    )


async def replay(env: dict[str, str], tmp: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """(exit code, the result printed, stderr)."""
    code, out, err = await run_cli("replay", *args, cwd=tmp, env=env, timeout_s=120)
    assert out, err
    result: dict[str, Any] = orjson.loads(out)  # stdout is the result's JSON and nothing else
    return code, result, err


async def config_total(stack: Stack, config_id: UUID) -> int:
    response = await stack.client.get(EXECUTIONS, params={"config_id": str(config_id)})
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


# --- against the running service ----------------------------------------------------------------


async def test_a_dry_run_prints_the_plan_and_makes_nothing(
    stack: Stack, parent: tuple[UUID, UUID, str], env: dict[str, str], tmp_path: Path
) -> None:
    config_id, parent_id, _ = parent
    before = await config_total(stack, config_id)
    code, result, err = await replay(
        env, tmp_path, str(parent_id), "--from-stage", "enrich", "--to-route", "notify", "--dry-run"
    )
    assert code == 0, err
    assert (result["outcome"], result["command_type"]) == ("accepted", "ReplayExecution")
    plan = result["reply"]
    assert plan["dry_run"] is True
    assert (plan["parent_execution_id"], plan["root_execution_id"]) == (str(parent_id),) * 2
    assert (plan["to_route"], plan["message_count"]) == ("notify", 1)
    assert plan["from"] == {"execution_id": str(parent_id), "route": "enrich", "direction": "in"}
    assert plan["messages"][0]["payload"]["order_id"] == "A-1"
    assert await config_total(stack, config_id) == before


async def test_a_replay_by_tag_with_watch_follows_the_child_to_completed(
    stack: Stack, parent: tuple[UUID, UUID, str], env: dict[str, str], tmp_path: Path
) -> None:
    _, parent_id, tag = parent
    code, result, err = await replay(
        env, tmp_path, tag, "--from-stage", "enrich", "--tag", f"child-{tag}", "--watch"
    )
    assert code == 0, err  # the watch's: the child completed
    assert result["outcome"] == "accepted" and result["http_status"] == 200
    child = result["reply"]
    assert child["id"] == result["aggregate_id"]
    assert (child["parent_execution_id"], child["root_execution_id"]) == (str(parent_id),) * 2
    assert (child["replay_source"], child["tag"]) == ("storage", f"child-{tag}")
    assert f"execution {child['id']} completed" in err  # the live view is on stderr
    # The watch follows the events; the read model may apply the last one a little later.
    await stack.until_status(UUID(child["id"]), "completed")
    replays = (await stack.client.get(f"{EXECUTIONS}/{parent_id}/replays")).json()
    assert child["id"] in [execution["id"] for execution in replays["executions"]]


async def test_a_manual_replay_takes_messages(
    stack: Stack, parent: tuple[UUID, UUID, str], env: dict[str, str], tmp_path: Path
) -> None:
    _, parent_id, _ = parent
    payloads = [{"order_id": "M-1", "amount": 5}, {"order_id": "M-2", "amount": 7}]
    args = [a for p in payloads for a in ("--message", orjson.dumps(p).decode())]
    code, result, err = await replay(
        env, tmp_path, str(parent_id), "--source", "manual", "--to-route", "notify", *args,
        "--dry-run",
    )  # fmt: skip
    assert code == 0, err
    plan = result["reply"]
    assert (plan["replay_source"], plan["message_count"]) == ("manual", 2)
    assert [m["payload"] for m in plan["messages"]] == payloads


@pytest.mark.parametrize(
    ("args", "error_code"),
    [
        ([str(uuid.uuid4()), "--from-stage", "enrich"], "UnknownExecution"),
        (["PARENT", "--from-stage", "nope"], "InvalidReplay"),
        (["PARENT", "--source", "lineage", "--to-route", "notify"], "InvalidReplay"),
        (["PARENT", "--from-stage", "notify", "--direction", "produced", "--only-failed"],
         "InvalidReplay"),
    ],
)  # fmt: skip
async def test_a_rejected_replay_exits_1_with_the_error(
    parent: tuple[UUID, UUID, str],
    env: dict[str, str],
    tmp_path: Path,
    args: list[str],
    error_code: str,
) -> None:
    given = [str(parent[1]) if a == "PARENT" else a for a in args]
    code, result, err = await replay(env, tmp_path, *given)
    assert code == 1, err
    assert (result["outcome"], result["error_code"]) == ("rejected", error_code)


async def test_no_result_in_time_exits_3(
    kafka_bootstrap: str, topic_name: Any, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_name("idle"))
    await ensure_topics(settings)  # topics, but no handler reading them
    env = cli_env(
        PIPELINES_KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        PIPELINES_TOPIC_PREFIX=settings.topic_prefix,
    )
    code, out, err = await run_cli(
        "replay", "p", "--from-stage", "a", "--result-timeout", "1", cwd=tmp_path, env=env
    )
    assert (code, out) == (3, ""), err
    assert "no result within 1.0 s" in err


# --- refused before anything is sent --------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "manual", "--to-route", "r", "--message", "{x"], "--message #1 is not JSON"),
        (["--source", "manual", "--to-route", "r", "--message", "[1]"], "valid dictionary"),
        (["--source", "manual", "--to-route", "r"], "exactly one of from_path and messages"),
        (["--from-stage", "a", "--message", "{}"], "for replay_source manual"),
        ([], "a storage replay needs from_stage"),
        (["--from-stage", "a", "--config-version", "0"], "greater than or equal to 1"),
        (["--from-stage", "a", "--config-id", "nope"], "valid UUID"),
        (["--from-stage", "a", "--metadata", "[1]"], "valid dictionary"),
        (["--from-stage", "a", "--metadata", "{x"], "--metadata is not JSON"),
        (["--from-stage", "a", "--dry-run", "--watch"], "a --dry-run makes none"),
        (["--from-stage", "a", "--watch"], "--watch needs an API key"),
        (["--from-stage", "a", "--source", "files"], "'files' is not one of"),
        (["--from-stage", "a", "--direction", "sideways"], "'sideways' is not one of"),
    ],
)  # fmt: skip
def test_bad_options_exit_2_before_sending(args: list[str], message: str) -> None:
    # No broker address at all: getting as far as the bus would fail differently.
    result = CliRunner().invoke(app, ["replay", "p", *args], env={"PIPELINES_API_KEY": ""})
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output


def test_the_choices_are_the_contracts() -> None:
    assert list(get_args(Source)) == [str(s) for s in ReplaySource]
    assert list(get_args(Direction)) == [str(d) for d in ReplayDirection]


def test_help_imports_nothing_heavy_and_a_replay_only_the_kafka_client() -> None:
    code, out, modules, err = run_probe("replay", "--help")
    assert code == 0, err
    assert "--from-stage" in out
    assert loaded(modules, NEVER_FOR_HELP) == []
    # Nothing listens on port 1: the command is built, the bus fails to connect.
    code, _, modules, err = run_probe(
        "replay", "p", "--from-stage", "a", PIPELINES_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"
    )
    assert code == 2, err
    assert "is the service running?" in err
    assert "aiokafka" in modules
    assert loaded(modules, NEVER_FOR_SEND) == []
