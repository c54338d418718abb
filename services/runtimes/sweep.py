"""The one periodic loop of the roles that sweep: the orchestrator, the reconciler and the
outbox relay.

A `Sweep` runs its round (`work`), then waits `interval_s` before the next one; `wake()`
ends the wait at once (a wake-up during a round is kept: the next round follows it
without waiting). A round may ask for the next one at once (`Next.NOW`: a backlog) or
report a failure (`Next.BACK_OFF`, or an exception, which is logged): the loop then waits
`first_backoff_s`, doubling after each failure in a row up to `max_backoff_s`, and a
wake-up does not shorten that wait (whatever failed, the database or the broker, is
given time); the first round that works resets it. `on_round` is called before every
round, failed or not (a role's liveness heartbeat). The loop ends when `stop` is set; a
round under way finishes first.

`SweepingRole` is a role run on a sweep (the orchestrator, the reconciler): it opens what
it needs on an exit stack (so a start that fails half-way closes what it had opened, and
a stop closes everything in reverse order), sweeps until stopped, then closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from enum import Enum
from typing import Final, Generic, TypeVar

log = logging.getLogger(__name__)

MAX_BACKOFF_S: Final = 5.0


class Next(Enum):
    """What a round asks of the loop (a round returning None asks WAIT)."""

    WAIT = "wait"  # the interval, or until woken up
    NOW = "now"  # more to do: the next round at once
    BACK_OFF = "back_off"  # it failed: wait the backoff


Round = Callable[[], Awaitable[Next | None]]


class Sweep:
    """Usage: `Sweep("name", work, interval_s)`, then `await run(stop)`; `wake()` from
    the loop's thread. `interval_s` may be changed while it runs (from the next wait)."""

    def __init__(
        self,
        name: str,
        work: Round,
        interval_s: float,
        *,
        first_backoff_s: float | None = None,
        max_backoff_s: float | None = None,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self._work = work
        self._first_backoff_s = first_backoff_s  # None: the interval
        self._max_backoff_s = max_backoff_s  # None: MAX_BACKOFF_S, or the interval if longer
        self.woken = asyncio.Event()
        # Counters (health, metrics).
        self.rounds = 0
        self.failures = 0  # rounds that failed, in all
        self.failing = 0  # rounds that failed in a row, up to now

    def wake(self) -> None:
        """Run the next round now (or as soon as the one under way has finished)."""
        self.woken.set()

    @property
    def backoff_s(self) -> float:
        """The wait after the failures in a row so far (0: the last round worked)."""
        if not self.failing:
            return 0.0
        first = self.interval_s if self._first_backoff_s is None else self._first_backoff_s
        cap = self._max_backoff_s
        if cap is None:
            cap = max(MAX_BACKOFF_S, self.interval_s)
        return float(min(first * 2 ** (self.failing - 1), cap))

    async def run(self, stop: asyncio.Event, *, on_round: Callable[[], None] | None = None) -> None:
        while not stop.is_set():
            if on_round is not None:
                on_round()
            self.woken.clear()  # what woke this round is handled by it
            nxt = await self.once()
            if nxt is Next.NOW:
                continue
            if nxt is Next.BACK_OFF:
                await self.pause(stop, self.backoff_s, wakeable=False)
            else:
                await self.pause(stop)

    async def once(self) -> Next:
        """One round, counted; an exception is logged and counts as a failure."""
        self.rounds += 1
        try:
            nxt = await self._work() or Next.WAIT
        except Exception:
            log.exception("%s round failed; trying again", self.name)
            nxt = Next.BACK_OFF
        if nxt is Next.BACK_OFF:
            self.failures += 1
            self.failing += 1
        else:
            self.failing = 0
        return nxt

    async def pause(
        self, stop: asyncio.Event, timeout_s: float | None = None, *, wakeable: bool = True
    ) -> None:
        """Until the next round: `timeout_s` (the interval), or less if stopped or (when
        `wakeable`) woken up."""
        waits = [asyncio.ensure_future(stop.wait())]
        if wakeable:
            waits.append(asyncio.ensure_future(self.woken.wait()))
        timeout = self.interval_s if timeout_s is None else timeout_s
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if wakeable:
            # A wake-up arriving during the next round sets it again: the round after that
            # follows at once.
            self.woken.clear()


Opened = TypeVar("Opened")


class SweepingRole(Generic[Opened]):
    """Subclasses set `name` and `loop` and implement `_open`, which opens what the role
    needs, pushing each thing's closing on `exits`, and returns it (`_opened()` then)."""

    name: str
    loop: Sweep

    def __init__(self) -> None:
        self._io: Opened | None = None
        self._exits: AsyncExitStack | None = None

    async def run(self, stop: asyncio.Event, heartbeat: Callable[[], None] = lambda: None) -> None:
        """Sweep until `stop` is set, then stop gracefully."""
        await self.open()
        try:
            await self.loop.run(stop, on_round=heartbeat)
        finally:
            await self.close()

    async def open(self) -> None:
        async with AsyncExitStack() as exits:
            self._io = await self._open(exits)
            self._exits = exits.pop_all()
        log.info("%s started", self.name)

    async def close(self) -> None:
        exits, self._exits = self._exits, None
        if exits is not None:
            await exits.aclose()  # what it opened is still there while it closes
            log.info("%s stopped", self.name)
        self._io = None

    async def _open(self, exits: AsyncExitStack) -> Opened:
        raise NotImplementedError

    def _opened(self) -> Opened:
        if self._io is None:
            raise RuntimeError(f"{type(self).__name__}.open() first")
        return self._io


__all__ = ["MAX_BACKOFF_S", "Next", "Round", "Sweep", "SweepingRole"]
