"""Schemathesis over the OpenAPI document the app serves, against the app running as in
production (support.api_stack: the `api` role, the real broker, an in-process command
handler; the relay and projector roles keeping the read models) with a write API key.

Every operation gets generated requests, valid and invalid (the examples, coverage and
fuzzing phases). No answer may be a server error but a 503 the operation documents (a
command result late, the read model behind `X-Min-Version`: `not_a_server_error` lets
503 through and `status_code_conformance` fails one the operation does not document),
and every answer must conform to the document: a documented status code, its content
type, its headers and its body's schema.

Schemathesis runs as its CLI in a subprocess (its pytest plugin does not run on this
pytest), so the app keeps serving on the test's event loop meanwhile. The seed is fixed,
so a run is repeatable; `X-Min-Version` waits are shortened, so a generated version no
write reached costs little. The examples per operation keep the run near half a minute.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from services.adapters.kafka.engine import Tuning
from tests.entrypoints.http.support import api_stack

MAX_EXAMPLES = 10
# One: with more, Hypothesis parses lambdas' sources in several threads at once, which
# this Python can fail ("AST constructor recursion depth mismatch").
WORKERS = 1
SEED = 20_250_110
RUN_TIMEOUT_S = 240
# The embedded broker answers a fetch only once its wait is over, whatever arrives: a
# handler fetching with the default 500 ms would add ~250 ms to every write.
HANDLER_TUNING: Tuning = {"consumer_options": {"fetch_max_wait_ms": 20}}
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
CONFIG = """\
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "503"]
"""


def schemathesis_command(config: Path, base_url: str, authorization: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--header",
        f"Authorization: {authorization}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        # No stateful phase: it costs ~4 s, but of the 235 links it infers it followed
        # none (the generated creates are refused, so no scenario gets an id to pass on).
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        str(WORKERS),
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        # Revoking keys is test_api_keys.py's: here it would revoke the run's own key,
        # which the fuzzer learns from GET /v0/api-keys.
        "--exclude-operation-id",
        "delete_api_key_v0_api_keys__name__delete",
        # The event streams stay open up to their timeout (an hour): test_*_events.py's.
        *("--exclude-operation-id", "watch_execution"),
        *("--exclude-operation-id", "watch_pipeline"),
        *("--exclude-operation-id", "watch_pipelines"),
    ]


async def test_every_operation_answers_as_documented_and_never_fails_on_its_own(
    kafka_bootstrap: str, tmp_path: Path, fast_min_version_wait: None
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    async with api_stack(
        kafka_bootstrap, tmp_path, read_models=True, handler_tuning=HANDLER_TUNING
    ) as (_, client, __):
        base_url = str(client.base_url).rstrip("/")
        command = schemathesis_command(config, base_url, client.headers["Authorization"])
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    report = output.decode(errors="replace")
    print(report)  # pytest shows it with -rP
    assert process.returncode == 0, report
