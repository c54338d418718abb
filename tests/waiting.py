"""Waiting in tests for something to hold: polled until it does. A test waits for a
condition, never for a time; the timeout only ends a hang (and names what never came)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

WAIT_S = 60.0


async def eventually_async(
    check: Callable[[], Awaitable[bool]],
    what: str,
    timeout_s: float = WAIT_S,
    *,
    every_s: float = 0.1,
) -> None:
    """Wait until `await check()` holds; TimeoutError "gave up waiting for {what}"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(every_s)


async def eventually(
    check: Callable[[], bool], what: str, timeout_s: float = WAIT_S, *, every_s: float = 0.02
) -> None:
    """Wait until `check()` holds (a cheap check, so it is asked often)."""

    async def holds() -> bool:
        return check()

    await eventually_async(holds, what, timeout_s, every_s=every_s)


__all__ = ["WAIT_S", "eventually", "eventually_async"]
