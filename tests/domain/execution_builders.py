"""Build an Execution for the aggregate's tests, and check a refusal changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from uuid6 import uuid7

from domain.errors import DomainError
from domain.execution import Execution

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_run(routes: tuple[str, ...] = ("a", "b"), **kwargs: Any) -> Execution:
    run = Execution.for_config(
        execution_id=uuid7(),
        config_id=uuid4(),
        config_version=1,
        at=T0,
        route_ids=routes,
        config_init_payload={"source": "s3://bucket", "opts": {"depth": 1}},
        **kwargs,
    )
    run.collect_events()
    return run


def refused(run: Execution, call: Callable[[], object]) -> DomainError:
    """Run `call`, expect a DomainError and no change at all to the aggregate."""
    before = (dict(vars(run)), run.version, list(run.pending_events))
    with pytest.raises(DomainError) as caught:
        call()
    assert (dict(vars(run)), run.version, list(run.pending_events)) == before
    return caught.value


def answer(e: DomainError) -> tuple[int, str, str, Any]:
    return (e.http_status, e.error_code, e.message, e.details)
