"""Build a Pipeline in a given lifecycle state through its own verbs (no state poking), and
check that a refusal changes nothing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from uuid import UUID, uuid4

import pytest

from contracts.statuses import (
    InitialStatus,
    ResourcesDesiredStatus,
    ResourcesStatus,
    RuntimeStatus,
)
from domain.base import Aggregate
from domain.errors import DomainError
from domain.pipeline import Pipeline

R = ResourcesStatus
D = ResourcesDesiredStatus

_T0 = datetime(2026, 1, 1, tzinfo=UTC)
_ticks = count()


def now() -> datetime:
    """A strictly increasing clock, so every `*_since` change is visible."""
    return _T0 + timedelta(seconds=next(_ticks))


def new_pipeline(name: str = "p1", *, validated: bool = True) -> Pipeline:
    p = Pipeline(name=name, config_id=uuid4(), at=now())
    if validated:
        p.program_validated(True, at=now())
    return p


def provisioned(
    initial: InitialStatus = InitialStatus.RUNNING,
    runtime: RuntimeStatus | None = RuntimeStatus.RUNNING,
) -> tuple[Pipeline, UUID]:
    p = new_pipeline()
    p.start(initial, at=now())
    dep = p.begin_provisioning(at=now())
    p.provisioned(dep, at=now())
    if runtime is not None:
        p.runtime_status_reported(dep, runtime, at=now())
    return p, dep


def in_state(resources: R, desired: D) -> tuple[Pipeline, UUID | None]:
    """A pipeline at (resources, desired); storage is InUse unless the state forbids it."""
    if resources is R.STOPPED:
        p, dep = provisioned()
        p.stop(force=True, at=now())
        p.begin_stopping(dep, at=now())
        p.stopped(dep, at=now())
        if desired is D.PROVISIONED:
            p.start(at=now())
        return p, None
    if resources is R.PROVISIONING:
        p = new_pipeline()
        p.start(at=now())
        dep = p.begin_provisioning(at=now())
    elif resources is R.PROVISIONED:
        p, dep = provisioned()
    else:
        p, dep = provisioned()
        p.begin_stopping(dep, at=now())
    if desired is D.STOPPED and resources is not R.STOPPING:
        p.stop(force=True, at=now())
    assert (p.resources_status, p.resources_desired_status) == (resources, desired)
    return p, dep


def state_of(p: Aggregate) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in vars(p).items() if k != "_pending_events"})


def refused(p: Aggregate, call: Callable[[], object]) -> DomainError:
    """Run a call that must be refused; a refusal leaves no event and no state change."""
    p.collect_events()
    before = state_of(p)
    with pytest.raises(DomainError) as caught:
        call()
    assert p.collect_events() == []
    assert state_of(p) == before
    return caught.value


def body(e: DomainError) -> tuple[int, str, str, Any]:
    return e.http_status, e.error_code, e.message, e.details
