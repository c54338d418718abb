"""The one sweep loop (services.runtimes.sweep): a wake-up runs the next round before the
interval, a backlog runs it at once, failures back off doubling up to the cap and the
first round that works resets it, `on_round` precedes every round, and `stop` ends the
loop while it waits. The intervals are long: only the behaviour under test can make a
round happen in time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from services.runtimes.sweep import MAX_BACKOFF_S, Next, Sweep
from tests.waiting import eventually

LONG_S = 600.0  # no round ever follows another by waiting this long in a test


class Work:
    """Answers each round with the next of `answers` (then WAIT); raises for an exception."""

    def __init__(self, *answers: Next | Exception | None) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> Next | None:
        self.calls += 1
        if not self.answers:
            return None
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@asynccontextmanager
async def running(
    sweep: Sweep, on_round: Callable[[], None] | None = None
) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(sweep.run(stop, on_round=on_round))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_a_wake_up_runs_the_next_round_before_the_interval() -> None:
    work = Work()
    sweep = Sweep("test", work, LONG_S)
    async with running(sweep):
        await eventually(lambda: work.calls == 1, "the first round")
        sweep.wake()
        await eventually(lambda: work.calls == 2, "a round after the wake-up")
        sweep.wake()
        await eventually(lambda: work.calls == 3, "a round after the second wake-up")
    assert sweep.rounds == 3 and sweep.failures == 0


async def test_a_backlog_runs_the_next_round_at_once() -> None:
    work = Work(Next.NOW, Next.NOW, Next.NOW, Next.WAIT)
    sweep = Sweep("test", work, LONG_S)
    async with running(sweep):
        await eventually(lambda: work.calls == 4, "four rounds without waiting")
    assert work.calls == 4  # the fourth asked to wait: the stop ended that wait


async def test_stop_ends_the_wait_and_on_round_precedes_every_round() -> None:
    beats: list[int] = []
    work = Work()
    sweep = Sweep("test", work, LONG_S)
    async with running(sweep, on_round=lambda: beats.append(work.calls)) as stop:
        await eventually(lambda: work.calls == 1, "the first round")
        sweep.wake()
        await eventually(lambda: work.calls == 2, "the second round")
        stop.set()
    assert beats == [0, 1]


async def test_failures_back_off_doubling_up_to_the_cap_and_a_success_resets() -> None:
    boom = RuntimeError("simulated: the database is away")
    work = Work(boom, Next.BACK_OFF, boom, boom, boom, boom, boom, None, boom)
    sweep = Sweep("test", work, 0.5)
    waits = []
    for _ in range(9):
        await sweep.once()
        waits.append(sweep.backoff_s)
    assert waits == [0.5, 1.0, 2.0, 4.0, MAX_BACKOFF_S, MAX_BACKOFF_S, MAX_BACKOFF_S, 0.0, 0.5]
    assert (sweep.rounds, sweep.failures, sweep.failing) == (9, 8, 1)


def test_the_backoff_starts_and_ends_where_it_is_told() -> None:
    sweep = Sweep("test", Work(), 5.0, first_backoff_s=0.05, max_backoff_s=0.3)
    found = []
    for failing in range(1, 6):
        sweep.failing = failing
        found.append(sweep.backoff_s)
    assert found == [0.05, 0.1, 0.2, 0.3, 0.3]
    # The default cap never makes a failed round come sooner than the interval.
    slow = Sweep("test", Work(), 60.0)
    slow.failing = 3
    assert slow.backoff_s == 60.0


async def test_a_failed_round_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    work = Work(RuntimeError("simulated"))
    sweep = Sweep("test sweep", work, LONG_S, first_backoff_s=0.01)
    async with running(sweep):
        await eventually(lambda: work.calls == 2, "a round after the failed one")
    assert sweep.failures == 1 and sweep.failing == 0
    assert "test sweep round failed" in caplog.text


async def test_a_wake_up_during_a_round_is_kept_for_the_next_wait() -> None:
    sweep: Sweep

    async def wakes_itself_once() -> None:
        if sweep.rounds == 1:
            sweep.wake()  # something happened while this round ran

    sweep = Sweep("test", wakes_itself_once, LONG_S)
    async with running(sweep):
        await eventually(lambda: sweep.rounds == 2, "the round the wake-up asked for")
