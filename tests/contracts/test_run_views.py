"""What each canonical run status means (contracts.run_views), written out from the seeds
independently of the tables: final statuses, the start, the seed 002 and 004 views, and
the stages an execution closes when it is stopped from outside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from contracts import run_views as views
from contracts.statuses import ExecutionStatus, MarquezRunState, RunStatus

S = RunStatus
ALL = list(RunStatus)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# The mapping table, row by row.
VIEW_ROWS = [
    ({S.PENDING, S.QUEUED}, MarquezRunState.NEW, ExecutionStatus.RUNNING),
    ({S.PROCESSING, S.RUNNING, S.WAITING, S.COMPLETE}, MarquezRunState.RUNNING, "running"),
    ({S.SUCCESS}, MarquezRunState.COMPLETED, ExecutionStatus.COMPLETED),
    ({S.FAILURE, S.TIMEOUT, S.INVALID}, MarquezRunState.FAILED, ExecutionStatus.FAILED),
    ({S.CANCELLED}, MarquezRunState.ABORTED, ExecutionStatus.CANCELLED),
    ({S.INTERRUPTED}, MarquezRunState.ABORTED, ExecutionStatus.INTERRUPTED),
]


@pytest.mark.parametrize("status", ALL)
def test_seed_views_follow_the_mapping_table(status: RunStatus) -> None:
    (row,) = [row for row in VIEW_ROWS if status in row[0]]
    assert views.marquez_state(status) == row[1]
    assert views.execution_status(status) == row[2]
    # The wire spellings are what the seeds list.
    assert views.marquez_state(status).value in {"NEW", "RUNNING", "COMPLETED", "FAILED", "ABORTED"}
    assert views.execution_status(status).value in {
        "running", "completed", "failed", "cancelled", "interrupted",
    }  # fmt: skip


def test_view_rows_cover_each_status_once() -> None:
    covered = [s for row in VIEW_ROWS for s in row[0]]
    assert sorted(covered) == sorted(RunStatus)


def test_final_and_started_statuses() -> None:
    assert {s.value for s in views.TERMINAL} == {
        "success", "failure", "cancelled", "timeout", "invalid", "interrupted",
    }  # fmt: skip
    assert {s.value for s in views.STARTED} == {"running", "waiting", "complete"}
    assert not views.STARTED & views.TERMINAL


def test_only_a_stop_from_outside_closes_stages() -> None:
    assert {s.value for s in views.CLOSES_OPEN_STAGES} == {"cancelled", "timeout", "interrupted"}
    # success and failure are reported by the orchestrator after the stages finished.
    assert views.CLOSES_OPEN_STAGES <= views.TERMINAL


@pytest.mark.parametrize(("run", "stage"), list(product(ALL, ALL)))
def test_a_closing_run_ends_exactly_its_unfinished_stages(run: RunStatus, stage: RunStatus) -> None:
    final = {S.SUCCESS, S.FAILURE, S.CANCELLED, S.TIMEOUT, S.INVALID, S.INTERRUPTED}
    expected = run in {S.CANCELLED, S.TIMEOUT, S.INTERRUPTED} and stage not in final
    assert views.closes_stage(run, stage) is expected


def test_a_stage_never_ends_before_it_started() -> None:
    later = T0 + timedelta(seconds=5)
    assert views.stage_end(T0, None) == T0
    assert views.stage_end(later, T0) == later
    assert views.stage_end(T0, later) == later  # the report's clock lags the start
