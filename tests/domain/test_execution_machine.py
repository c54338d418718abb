"""Random command sequences against one Execution, checking the invariants after each step:
a terminal run never changes (only delete may follow), ended_at is set iff the status is
terminal, started_at <= ended_at, no transition time moves backwards, a refused command
changes nothing and leaves no pending event, and the events replay to the same state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from uuid6 import uuid7

from contracts.statuses import RunStatus
from domain.errors import DomainError
from domain.execution import Execution
from domain.run_status import TERMINAL, TRANSITIONS, MarquezAction

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(hours=1)
ROUTES = ["a", "b"]

# What may differ on a terminal run: only a delete touches it, and only these.
MAY_CHANGE_AFTER_END = {"deleted", "updated_at", "_version", "_pending_events", "_modified_on"}

offsets = st.none() | st.integers(min_value=-120, max_value=120)
routes = st.sampled_from([*ROUTES, "unknown"])
counts = st.integers(min_value=-1, max_value=50)


class ExecutionMachine(RuleBasedStateMachine):
    run: Execution

    @initialize(with_routes=st.booleans())
    def create(self, with_routes: bool) -> None:
        self.clock = T0
        self.run = Execution.for_pipeline(
            execution_id=uuid7(),
            pipeline_id=uuid7(),
            run_number=1,
            at=T0,
            route_ids=ROUTES if with_routes else (),
            timeout=TIMEOUT,
        )
        self.events: list[Any] = list(self.run.collect_events())
        self.ended_state: dict[str, Any] | None = None
        self.last_transition_at: datetime | None = None

    # --- helpers --------------------------------------------------------------------------

    def tick(self, seconds: int) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    def attempt(self, call: Callable[[], object]) -> None:
        before = (dict(vars(self.run)), self.run.version, list(self.run.pending_events))
        previous_status = self.run.status
        try:
            call()
        except DomainError:
            after = (dict(vars(self.run)), self.run.version, list(self.run.pending_events))
            assert after == before
            return
        new: list[Any] = list(self.run.collect_events())
        for e in new:
            if type(e).__name__ == "StatusChanged":
                assert e.status in TRANSITIONS[previous_status]
                previous_status = e.status
        self.events.extend(new)

    # --- rules ----------------------------------------------------------------------------

    @rule(to=st.sampled_from(list(RunStatus)), offset=offsets, step=st.integers(0, 60))
    def transition(self, to: RunStatus, offset: int | None, step: int) -> None:
        now = self.tick(step)
        at = None if offset is None else now + timedelta(seconds=offset)
        self.attempt(lambda: self.run.transition(to, at=at, now=now))

    # A second door to non-terminal moves keeps runs alive longer, so the late-message and
    # clamping paths are reached often (a uniform draw ends most runs in a few steps).
    @rule(
        to=st.sampled_from([s for s in RunStatus if s not in TERMINAL]),
        offset=offsets,
        step=st.integers(0, 60),
    )
    def live_transition(self, to: RunStatus, offset: int | None, step: int) -> None:
        self.transition(to, offset, step)

    @rule(action=st.sampled_from(list(MarquezAction)), offset=offsets)
    def marquez_action(self, action: MarquezAction, offset: int | None) -> None:
        now = self.tick(1)
        at = None if offset is None else now + timedelta(seconds=offset)
        self.attempt(lambda: self.run.apply_marquez_action(action, at=at, now=now))

    @rule(step=st.sampled_from([1, 600, 3600]))
    def sweep_deadline(self, step: int) -> None:
        now = self.tick(step)
        self.attempt(lambda: self.run.time_out(now=now))

    @rule(route=routes)
    def stage_started(self, route: str) -> None:
        now = self.tick(1)
        self.attempt(lambda: self.run.stage_started(route, at=now))

    @rule(route=routes, messages_in=counts, messages_out=counts, failed=counts)
    def stage_progress(self, route: str, messages_in: int, messages_out: int, failed: int) -> None:
        now = self.tick(1)
        self.attempt(
            lambda: self.run.stage_progress(route, messages_in, messages_out, failed, at=now)
        )

    @rule(route=routes, status=st.sampled_from(list(RunStatus)), offset=st.integers(-30, 30))
    def stage_finished(self, route: str, status: RunStatus, offset: int) -> None:
        at = self.tick(1) + timedelta(seconds=offset)
        self.attempt(lambda: self.run.stage_finished(route, status, at=at))

    @rule()
    def delete(self) -> None:
        now = self.tick(1)
        self.attempt(lambda: self.run.delete(at=now))

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def a_terminal_run_never_changes(self) -> None:
        if not self.run.is_terminal:
            assert self.ended_state is None
            return
        state = {k: v for k, v in vars(self.run).items() if k not in MAY_CHANGE_AFTER_END}
        if self.ended_state is None:
            self.ended_state = state
        assert state == self.ended_state

    @invariant()
    def ended_at_iff_terminal(self) -> None:
        assert (self.run.ended_at is not None) == (self.run.status in TERMINAL)

    @invariant()
    def time_never_runs_backwards(self) -> None:
        run = self.run
        if run.started_at is not None and run.ended_at is not None:
            assert run.started_at <= run.ended_at
            assert run.duration_ms is not None and run.duration_ms >= 0
        if self.last_transition_at is not None:
            assert run.last_transition_at is not None
            assert run.last_transition_at >= self.last_transition_at
        self.last_transition_at = run.last_transition_at
        for stage in run.routes.values():
            assert (stage.ended_at is None) or stage.status in TERMINAL
            if stage.started_at is not None and stage.ended_at is not None:
                assert stage.started_at <= stage.ended_at

    @invariant()
    def events_replay_to_the_same_run(self) -> None:
        rebuilt: Execution | None = None
        for e in self.events:
            rebuilt = type(e).model_validate_json(e.model_dump_json()).mutate(rebuilt)
        assert rebuilt is not None
        assert vars(rebuilt) == vars(self.run)


ExecutionMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None
)
TestExecutionMachine = ExecutionMachine.TestCase
