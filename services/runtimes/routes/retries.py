"""A route's adapters on one message, retried as the route's `error_handling` says:
`max_retries` more attempts, `retry_delay_seconds` apart, each on a fresh copy of the
payload (a failed attempt may have changed it). Both route runtimes (the orchestrator's
route workers and the reconciler's pipeline workers) run their messages through here;
what giving up means (a dead letter, a stopped pipeline) is theirs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson

from contracts.config_document import RouteSpec
from services.runtimes.routes.adapters import (
    AdapterContext,
    AdapterFailure,
    AdapterRuntime,
    Payload,
)


class RetriesExhausted(Exception):
    """Every attempt failed; `failure` is the last one's."""

    def __init__(self, failure: AdapterFailure, attempts: int) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.attempts = attempts


class RetriesAbandoned(Exception):
    """`go_on` said not to retry (e.g. the message's execution finished meanwhile)."""


async def _always() -> bool:
    return True


async def run_with_retries(
    adapters: AdapterRuntime,
    route: RouteSpec,
    value: bytes,
    context: AdapterContext,
    go_on: Callable[[], Awaitable[bool]] = _always,
) -> list[Payload]:
    """The payloads that leave the route's steps for the payload `value` encodes. After a
    failed attempt and its delay, `go_on()` is asked whether to try again."""
    handling = route.error_handling
    attempts = handling.max_retries + 1
    for attempt in range(1, attempts + 1):
        try:
            return await adapters.run_steps(route.adapters, orjson.loads(value), context)
        except AdapterFailure as failure:
            if attempt == attempts:
                raise RetriesExhausted(failure, attempts) from failure
        await asyncio.sleep(handling.retry_delay_seconds)
        if not await go_on():
            raise RetriesAbandoned
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["RetriesAbandoned", "RetriesExhausted", "run_with_retries"]
