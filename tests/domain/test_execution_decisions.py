"""The orchestrator's word on an execution: its decisions (the DECISIONS table, stale
versions, finished executions), its per-route progress reports, and the init topic the
creation event records."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from uuid6 import uuid7

from contracts.orchestrator_commands import ExecutionDecision
from contracts.statuses import RunStatus
from domain.execution import DEFAULT_RUN_TIMEOUT, Execution, ExecutionState
from domain.run_status import TERMINAL, Verdict, verdict
from domain.run_transitions import DECISIONS
from services.adapters.eventstore import OrjsonTranscoder, PydanticMapper
from tests.domain.execution_builders import answer, at, new_run, refused

S = RunStatus
D = ExecutionDecision
PAST_DEADLINE = at(DEFAULT_RUN_TIMEOUT.total_seconds() + 1)


def run_in(status: RunStatus) -> Execution:
    run = new_run(routes=() if status is S.INVALID else ("a", "b"))
    if status is not S.PENDING:
        run.transition(status, now=at(1))
    run.collect_events()
    return run


def test_the_table_names_one_status_per_decision() -> None:
    assert DECISIONS == {
        D.START: S.RUNNING,
        D.COMPLETE: S.SUCCESS,
        D.FAIL: S.FAILURE,
        D.TIME_OUT: S.TIMEOUT,
        D.INTERRUPT: S.INTERRUPTED,
    }


@pytest.mark.parametrize(
    ("status", "decision"), list(itertools.product(RunStatus, ExecutionDecision))
)
def test_every_decision_from_every_status_follows_the_transition_table(
    status: RunStatus, decision: ExecutionDecision
) -> None:
    run = run_in(status)
    target = DECISIONS[decision]

    def decide() -> bool:
        return run.decide(decision, expected_version=run.version, reason="why", now=PAST_DEADLINE)

    match verdict(status, target):
        case Verdict.MOVE:
            assert decide() is True
            assert run.status is target
            (changed,) = run.collect_events()
            assert changed.reason == "why"  # type: ignore[attr-defined]
        case Verdict.NO_OP:
            assert decide() is False
            assert run.collect_events() == []
        case Verdict.TERMINAL:
            assert refused(run, decide).error_code == "RunAlreadyTerminal"
        case Verdict.ILLEGAL:
            assert refused(run, decide).error_code == "IllegalRunTransition"


def test_a_decision_on_a_version_the_execution_has_left_is_stale() -> None:
    run = new_run()
    decided_on = run.version
    run.report_stage("a", 1, 1, 0, at=at(2))
    error = refused(run, lambda: run.decide(D.COMPLETE, expected_version=decided_on, now=at(3)))
    assert answer(error) == (
        409,
        "StaleDecision",
        f"Decision 'complete' on execution '{run.id}' was made at version {decided_on}, "
        f"but the execution is at version {run.version}",
        {
            "execution_id": str(run.id),
            "decision": "complete",
            "expected_version": decided_on,
            "version": run.version,
        },
    )
    # A version from the future is just as stale.
    ahead = refused(run, lambda: run.decide(D.START, expected_version=run.version + 1, now=at(3)))
    assert ahead.error_code == "StaleDecision"


def test_a_decision_on_the_current_version_or_on_none_applies() -> None:
    run = new_run()
    assert run.decide(D.START, expected_version=run.version, at=at(5), now=at(9)) is True
    assert (run.status, run.started_at) == (S.RUNNING, at(5))
    assert run.decide(D.COMPLETE, now=at(10)) is True
    assert (run.status, run.ended_at) == (S.SUCCESS, at(10))


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_a_finished_execution_answers_whatever_version_a_decision_was_made_on(
    status: RunStatus,
) -> None:
    run = run_in(status)
    stale = run.version - 1
    for decision, target in DECISIONS.items():

        def decide(chosen: ExecutionDecision = decision) -> bool:
            return run.decide(chosen, expected_version=stale, now=PAST_DEADLINE)

        if target is status:
            assert decide() is False
        else:
            assert refused(run, decide).error_code == "RunAlreadyTerminal"


def test_time_out_is_judged_and_recorded_by_the_handlers_clock() -> None:
    run = new_run()
    early = refused(run, lambda: run.decide(D.TIME_OUT, at=PAST_DEADLINE, now=at(60)))
    assert early.error_code == "RunDeadlineNotReached"
    assert run.decide(D.TIME_OUT, at=at(7), now=PAST_DEADLINE, reason="deadline") is True
    assert (run.status, run.ended_at) == (S.TIMEOUT, PAST_DEADLINE)


def test_decisions_refuse_a_deleted_execution_and_unknown_words() -> None:
    run = new_run()
    with pytest.raises(ValueError, match="'finish'"):
        run.decide("finish", now=at(1))
    run.delete(at=at(2))
    assert refused(run, lambda: run.decide(D.START, now=at(3))).error_code == "UnknownRun"


# --- progress reports ----------------------------------------------------------------------


def test_the_first_report_starts_the_stage_and_counts_only_grow() -> None:
    run = new_run()
    assert run.report_stage("a", 2, 1, 0, at=at(5)) is True
    assert [type(e).__name__ for e in run.collect_events()] == ["StageStarted", "StageProgressed"]
    stage = run.routes["a"]
    assert (stage.status, stage.started_at, stage.messages_in, stage.messages_out) == (
        S.RUNNING,
        at(5),
        2,
        1,
    )
    # A late report (lower counts) changes nothing; a repeat neither.
    assert run.report_stage("a", 1, 0, 0, at=at(6)) is False
    assert run.report_stage("a", 2, 1, 0, at=at(7)) is False
    assert run.collect_events() == []
    assert run.report_stage("a", 3, 1, 1, at=at(8)) is True
    assert (run.routes["a"].messages_in, run.routes["a"].messages_failed) == (3, 1)
    assert run.routes["b"].status is S.PENDING


def test_a_finished_report_ends_the_stage_once() -> None:
    run = new_run()
    assert run.report_stage("b", 4, 4, 0, finished=S.SUCCESS, at=at(5)) is True
    assert [type(e).__name__ for e in run.collect_events()] == ["StageStarted", "StageFinished"]
    stage = run.routes["b"]
    assert (stage.status, stage.started_at, stage.ended_at, stage.messages_out) == (
        S.SUCCESS,
        at(5),
        at(5),
        4,
    )
    assert run.report_stage("b", 4, 4, 0, finished="success", at=at(6)) is False
    assert run.collect_events() == []
    late = refused(run, lambda: run.report_stage("b", 5, 5, 0, at=at(7)))
    assert (late.error_code, late.http_status) == ("StageAlreadyFinished", 409)
    other = refused(run, lambda: run.report_stage("b", 4, 4, 1, finished=S.FAILURE, at=at(7)))
    assert other.error_code == "StageAlreadyFinished"


@pytest.mark.parametrize(
    ("call", "code", "status"),
    [
        (lambda r: r.report_stage("nope", 1, 1, 0, at=at(1)), "UnknownRoute", 404),
        (lambda r: r.report_stage("a", -1, 0, 0, at=at(1)), "InvalidStageReport", 400),
        (
            lambda r: r.report_stage("a", 1, 1, 0, finished=S.RUNNING, at=at(1)),
            "InvalidStageReport",
            400,
        ),
    ],
    ids=["unknown-route", "negative-count", "non-final-finish"],
)
def test_a_bad_report_is_refused_before_any_event(call: Any, code: str, status: int) -> None:
    run = new_run()
    error = refused(run, lambda: call(run))
    assert (error.error_code, error.http_status) == (code, status)
    assert run.routes["a"].status is S.PENDING


def test_a_finished_execution_takes_no_reports() -> None:
    run = new_run()
    run.cancel(now=at(1))
    error = refused(run, lambda: run.report_stage("a", 1, 1, 0, at=at(2)))
    assert (error.error_code, error.http_status) == ("RunAlreadyTerminal", 409)


# --- the init topic ------------------------------------------------------------------------


def config_run(init_topic: str | None) -> Execution:
    return Execution.for_config(
        execution_id=uuid7(),
        config_id=uuid4(),
        config_version=1,
        at=datetime(2026, 3, 1, tzinfo=UTC),
        route_ids=["fetch"],
        config_init_payload={"url": "u"},
        init_route="fetch",
        init_topic=init_topic,
    )


MAPPER = PydanticMapper(transcoder=OrjsonTranscoder())


def test_a_config_run_records_its_init_topic_and_replays_it() -> None:
    run = config_run("fetch.in")
    stored = [MAPPER.to_stored_event(e) for e in run.collect_events()]
    assert orjson.loads(stored[0].state)["init_topic"] == "fetch.in"
    replayed = replay(stored)
    assert (replayed.init_topic, replayed.init_route) == ("fetch.in", "fetch")
    assert ExecutionState.model_validate(snapshot_state(run)).init_topic == "fetch.in"


def test_a_creation_event_stored_before_init_topic_existed_reads_as_none() -> None:
    run = config_run("fetch.in")
    (created,) = [MAPPER.to_stored_event(e) for e in run.collect_events()]
    state = orjson.loads(created.state)
    assert state.pop("class_version") == 2
    del state["init_topic"]  # what version 1 of the event stored
    old = StoredEvent(
        created.originator_id, created.originator_version, created.topic, orjson.dumps(state)
    )
    assert replay([old]).init_topic is None
    old_snapshot = {k: v for k, v in snapshot_state(run).items() if k != "init_topic"}
    assert ExecutionState.model_validate(old_snapshot).init_topic is None


def replay(stored: list[StoredEvent]) -> Execution:
    aggregate: Any = None
    for event in stored:
        domain_event: Any = MAPPER.to_domain_event(event)
        aggregate = domain_event.mutate(aggregate)
    assert isinstance(aggregate, Execution)
    return aggregate


def snapshot_state(run: Execution) -> dict[str, Any]:
    state = dict(vars(run))
    state.pop("_pending_events", None)
    return state
