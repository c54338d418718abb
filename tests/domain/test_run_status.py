"""The run status machine: every (from, to) pair against the table, seed 002's actions, and
the decisions the table encodes (checked against the seeds, not against the table itself).
The seed views of each status are tests/contracts/test_run_views.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
from uuid6 import uuid7

from contracts.run_views import TERMINAL, marquez_state
from contracts.statuses import RunStatus
from domain.errors import DomainError
from domain.execution import Execution
from domain.run_status import (
    STAGE_TRANSITIONS,
    TRANSITIONS,
    MarquezAction,
    Verdict,
    from_marquez_action,
    verdict,
)

S = RunStatus
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALL = list(RunStatus)


def execution_in(status: RunStatus) -> Execution:
    """A route-less run moved straight from pending to `status` (every status is one step
    from pending), with its events collected."""
    run = Execution.for_pipeline(execution_id=uuid7(), pipeline_id=uuid7(), run_number=1, at=T0)
    if status is not S.PENDING:
        run.transition(status, now=T0 + timedelta(seconds=1))
    run.collect_events()
    return run


def test_the_table_covers_every_status_and_names_only_real_ones() -> None:
    assert set(TRANSITIONS) == set(RunStatus)
    assert len(RunStatus) == 12
    for source, targets in TRANSITIONS.items():
        assert source not in targets  # same -> same is a no-op, never an edge


def test_terminal_statuses_are_exactly_the_final_six() -> None:
    assert {s.value for s in TERMINAL} == {
        "success", "failure", "cancelled", "timeout", "invalid", "interrupted",
    }  # fmt: skip
    for status in RunStatus:
        assert (status in TERMINAL) == (TRANSITIONS[status] == frozenset())


@pytest.mark.parametrize(("source", "target"), list(product(ALL, ALL)))
def test_every_pair_follows_the_table(source: RunStatus, target: RunStatus) -> None:
    run = execution_in(source)
    before = run.version
    if source is target:
        assert verdict(source, target) is Verdict.NO_OP
        assert run.transition(target, now=T0 + timedelta(seconds=2)) is False
    elif target in TRANSITIONS[source]:
        assert verdict(source, target) is Verdict.MOVE
        assert run.transition(target, now=T0 + timedelta(seconds=2)) is True
        assert run.status is target
        assert [type(e).__name__ for e in run.collect_events()] == ["StatusChanged"]
        return
    else:
        with pytest.raises(DomainError) as caught:
            run.transition(target, now=T0 + timedelta(seconds=2))
        e = caught.value
        details = {"run_id": str(run.id), "from": source.value, "to": target.value}
        if source in TERMINAL:
            assert verdict(source, target) is Verdict.TERMINAL
            assert (e.error_code, e.http_status) == ("RunAlreadyTerminal", 409)
            assert e.message == (
                f"Run '{run.id}' is already '{source.value}', a final status, "
                f"and cannot move to '{target.value}'"
            )
        else:
            assert verdict(source, target) is Verdict.ILLEGAL
            assert (e.error_code, e.http_status) == ("IllegalRunTransition", 409)
            assert e.message == (
                f"Run '{run.id}' cannot move from '{source.value}' to '{target.value}'"
            )
        assert e.details == details
    assert run.status is source
    assert run.version == before
    assert run.collect_events() == []


# The seeds' own statements, written out independently of the table.
PROGRESSION = [S.PENDING, S.QUEUED, S.PROCESSING, S.RUNNING, S.COMPLETE]


def test_marquez_may_go_from_new_straight_to_completed_or_failed() -> None:
    assert {S.SUCCESS, S.FAILURE} <= TRANSITIONS[S.PENDING]
    assert {S.SUCCESS, S.FAILURE} <= TRANSITIONS[S.QUEUED]  # also NEW in seed 002


def test_complete_is_not_terminal_and_only_settles() -> None:
    assert S.COMPLETE not in TERMINAL
    assert {S.SUCCESS, S.FAILURE} <= TRANSITIONS[S.COMPLETE]
    assert S.RUNNING not in TRANSITIONS[S.COMPLETE]
    assert S.CANCELLED not in TRANSITIONS[S.COMPLETE]


def test_nothing_moves_backward_except_waiting_resuming() -> None:
    for earlier, later in product(PROGRESSION, PROGRESSION):
        if PROGRESSION.index(earlier) < PROGRESSION.index(later):
            assert later in TRANSITIONS[earlier]
            assert earlier not in TRANSITIONS[later]
    assert S.RUNNING in TRANSITIONS[S.WAITING] and S.WAITING in TRANSITIONS[S.RUNNING]


def test_every_live_run_can_be_interrupted_and_fail() -> None:
    for status in RunStatus:
        if status not in TERMINAL:
            assert {S.INTERRUPTED, S.FAILURE, S.SUCCESS} <= TRANSITIONS[status]


def test_invalid_is_decided_before_the_run_starts() -> None:
    assert {s for s in RunStatus if S.INVALID in TRANSITIONS[s]} == {
        S.PENDING, S.QUEUED, S.PROCESSING,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("action", "status"),
    [("start", S.RUNNING), ("complete", S.SUCCESS), ("fail", S.FAILURE), ("abort", S.CANCELLED)],
)
def test_seed_002_actions_map_to_canonical_statuses(action: str, status: RunStatus) -> None:
    assert from_marquez_action(action) is status
    assert from_marquez_action(MarquezAction(action)) is status
    # ...and the action's own state is what seed 002 then shows.
    expected = {"start": "RUNNING", "complete": "COMPLETED", "fail": "FAILED", "abort": "ABORTED"}
    assert marquez_state(status).value == expected[action]


def test_an_unknown_seed_002_action_is_refused() -> None:
    with pytest.raises(DomainError) as caught:
        from_marquez_action("resume")
    assert (caught.value.error_code, caught.value.http_status) == ("UnknownRunAction", 400)
    assert caught.value.details == {
        "action": "resume",
        "allowed": ["start", "complete", "fail", "abort"],
    }


def test_stage_table_only_moves_forward_to_an_end() -> None:
    assert STAGE_TRANSITIONS[S.PENDING] == TERMINAL | {S.RUNNING}
    assert STAGE_TRANSITIONS[S.RUNNING] == TERMINAL
    for status in TERMINAL:
        assert STAGE_TRANSITIONS[status] == frozenset()
