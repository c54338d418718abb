"""`pipelines executions watch` as the script runs it, in a fresh interpreter: its help
imports nothing heavy (not even httpx or rich's live display), and what it cannot work
with is refused before it connects (exit 2). Watching a real execution is in
tests/entrypoints/http/test_execution_events.py."""

from __future__ import annotations

import uuid

from tests.entrypoints.cli.test_cli_imports import NEVER_FOR_HELP, loaded, run_probe


def test_the_watch_help_imports_nothing_heavy() -> None:
    code, out, modules, err = run_probe("executions", "watch", "--help")
    assert code == 0, err
    assert "Usage: pipelines executions watch" in out
    assert "--api-key" in out and "PIPELINES_API_KEY" in out
    assert loaded(modules, (*NEVER_FOR_HELP, "httpx", "rich.live")) == []


def test_a_watch_without_a_key_or_of_a_non_id_is_refused_before_it_connects() -> None:
    no_key_code, _, no_key_modules, no_key_err = run_probe(
        "executions", "watch", str(uuid.uuid4()), "--api-url", "http://127.0.0.1:1"
    )
    bad_id_code, _, _, bad_id_err = run_probe(
        "executions", "watch", "nope", PIPELINES_API_KEY="pls_x"
    )
    assert (no_key_code, bad_id_code) == (2, 2)
    assert "no API key" in no_key_err
    assert "not an execution id" in bad_id_err
    assert "httpx" not in no_key_modules  # refused before any client was made


def test_a_watch_of_an_api_nobody_serves_exits_2() -> None:
    code, out, _, err = run_probe(
        "executions", "watch", str(uuid.uuid4()), "--api-url", "http://127.0.0.1:1",
        PIPELINES_API_KEY="pls_x",
    )  # fmt: skip
    assert code == 2, err
    assert "cannot reach the API at http://127.0.0.1:1" in err
    assert out == ""  # no display for a watch that never got an event
