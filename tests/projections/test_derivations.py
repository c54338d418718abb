"""The derivations projections re-implement (they may not import the domain) agree with
the domain's own over every input."""

from __future__ import annotations

import itertools

from contracts.statuses import (
    InitialStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    RunStatus,
    RuntimeDesiredStatus,
    RuntimeStatus,
)
from domain import execution, pipeline_table, run_status
from projections import pipelines, run_views


def test_combined_status_matches_the_domain_for_every_input() -> None:
    pairs = list(itertools.product(ResourcesStatus, [None, *RuntimeStatus]))
    for resources, runtime in pairs:
        assert pipelines.combined_status(resources, runtime) == pipeline_table.combined_status(
            resources, runtime
        ), (resources, runtime)
    assert len(pairs) == 4 * (len(RuntimeStatus) + 1)


def test_combined_desired_status_matches_the_domain_for_every_input() -> None:
    for desired, runtime, initial in itertools.product(
        ResourcesDesiredStatus, [None, *RuntimeDesiredStatus], [None, *InitialStatus]
    ):
        ours = pipelines.combined_desired_status(desired, runtime, initial)
        theirs = pipeline_table.combined_desired_status(desired, runtime, initial)
        assert ours == theirs, (desired, runtime, initial)


def test_run_views_match_the_domain_tables() -> None:
    for status in RunStatus:
        assert run_views.marquez_state(status) == run_status.to_marquez(status), status
        assert run_views.execution_status(status) == run_status.to_execution_status(status)
    assert run_views.TERMINAL == run_status.TERMINAL
    assert run_views.CLOSES_OPEN_STAGES == execution.CLOSES_OPEN_STAGES
    assert run_views.STARTED == run_status.STARTED
