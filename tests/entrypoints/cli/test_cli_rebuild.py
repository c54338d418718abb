"""`pipelines projections rebuild`: the read models rebuilt from the event store alone."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from contracts import CreatePipeline, StartPipeline
from projections.store import ReadStore
from services.entrypoints.cli import app
from tests.service_layer.decider_support import decide, opened_decider


def test_rebuild_builds_the_read_models_from_the_event_store(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with opened_decider(store_url) as decider:
        decide(decider, CreatePipeline(name="p1"), StartPipeline(pipeline_name="p1"))
    monkeypatch.setenv("PIPELINES_EVENT_STORE_URL", store_url)

    outcome = CliRunner().invoke(app, ["projections", "rebuild"])

    assert outcome.exit_code == 0, outcome.output
    assert "swapped in" in outcome.output
    # The progress bar's last frame: every event read, of as many, and the rate.
    done = re.search(r"rebuilt from (\d+) events", outcome.output)
    assert done is not None
    assert re.search(rf"\b{done[1]}/{done[1]} +[\d,]+ events/s", outcome.output), outcome.output
    with ReadStore(store_url) as read:
        pipeline = read.get_pipeline("p1")
    assert pipeline is not None
    assert pipeline["deployment_desired_status"] == "Running"
    assert pipeline["deployment_status"] == "Stopped"
