"""The console's parts that need no browser: one refusal shape out of every family's
error body, the stage timeline's bars, the replay form's body and session expiry."""

from __future__ import annotations

from typing import Any

import pytest

from services.entrypoints.http.ui.calls import Refusal, refusal_of
from services.entrypoints.http.ui.executions import replay_body, timeline
from services.entrypoints.http.ui.rendering import tone
from services.entrypoints.http.ui.session import IDLE_S, Sessions

VALIDATION_422: Any = {"detail": [{"loc": ["query", "tag"], "msg": "too short"}]}


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"message": "m", "error_code": "UnknownPipelineName"}, "UnknownPipelineName", "m"),
        ({"detail": "d", "error_code": "UnknownConfig"}, "UnknownConfig", "d"),
        ({"code": 400, "message": "e", "content": {"error_code": "Bad"}}, "Bad", "e"),
        ({"code": 404, "message": "no run"}, "HTTP404", "no run"),
        (VALIDATION_422, "RequestValidationFailed", "query.tag: too short"),
        ("plain text", "HTTP404", "plain text"),
    ],
)
def test_every_familys_error_is_one_refusal(body: Any, code: str, message: str) -> None:
    refusal = refusal_of(404, body)
    assert (refusal.error_code, refusal.message) == (code, message)


def test_the_timeline_places_each_stage_in_the_executions_span() -> None:
    execution = {"started_at": "2026-01-01T00:00:00Z", "completed_at": "2026-01-01T00:00:10Z"}
    stages: list[dict[str, Any]] = [
        {"stage": "a", "started_at": "2026-01-01T00:00:00Z", "ended_at": "2026-01-01T00:00:05Z"},
        {"stage": "b", "started_at": "2026-01-01T00:00:05Z", "ended_at": None},
        {"stage": "c", "started_at": None, "ended_at": None},
    ]
    drawn = {s["stage"]: (s["left"], s["width"]) for s in timeline(execution, stages)}
    assert drawn == {"a": (0.0, 50.0), "b": (50.0, 50.0), "c": (0.0, 0.0)}


def test_the_replay_form_becomes_the_apis_body() -> None:
    form = {
        "replay_source": "storage",
        "from_stage": "enrich",
        "to_route": "",
        "only_failed": "on",
        "overrides": '{"priority": "high"}',
        "messages": "",
        "tag": " again ",
    }
    assert replay_body(form) == {
        "replay_source": "storage",
        "from_stage": "enrich",
        "only_failed": True,
        "init_payload_overrides": {"priority": "high"},
        "tag": "again",
    }
    refused = replay_body({"overrides": "[1]"})
    assert isinstance(refused, Refusal) and refused.error_code == "InvalidJson"
    assert isinstance(replay_body({"messages": "{"}), Refusal)


def test_a_session_unused_too_long_is_gone() -> None:
    now = [0.0]
    sessions = Sessions(clock=lambda: now[0])
    session_id = sessions.open("pk_secret")
    now[0] = IDLE_S - 1
    assert sessions.secret_of(session_id) == "pk_secret"  # a use keeps it
    now[0] += IDLE_S - 1
    assert sessions.secret_of(session_id) == "pk_secret"
    now[0] += IDLE_S + 1
    assert sessions.secret_of(session_id) is None
    assert sessions.secret_of("made-up") is None


def test_a_status_has_a_tone_in_every_vocabulary() -> None:
    assert [tone(s) for s in ("Running", "COMPLETED", "failure", "Paused", "Provisioning")] == [
        "good", "good", "bad", "wait", "busy",
    ]  # fmt: skip
