"""The combined deployment status (contracts.deployment_status) over every input, checked
against Feldera's rules (docs/pipeline-lifecycle.md §1.3) transcribed here, not against
the tables."""

from __future__ import annotations

import itertools

import pytest

from contracts.deployment_status import combined_desired_status, combined_status
from contracts.statuses import CombinedDesiredStatus, CombinedStatus, InitialStatus
from contracts.statuses import ResourcesDesiredStatus as D
from contracts.statuses import ResourcesStatus as R
from contracts.statuses import RuntimeDesiredStatus as RD
from contracts.statuses import RuntimeStatus as RS


@pytest.mark.parametrize(("resources", "runtime"), list(itertools.product(R, [None, *RS])))
def test_combined_status(resources: R, runtime: RS | None) -> None:
    found = combined_status(resources, runtime)
    if resources is R.PROVISIONED:
        # The runtime status shows through; none reported yet reads Unavailable.
        assert found.value == ("Unavailable" if runtime is None else runtime.value)
    else:
        assert found.value == resources.value
    assert found.value != "Provisioned"
    assert found is CombinedStatus(found.value)


@pytest.mark.parametrize(
    ("desired", "runtime", "initial"),
    list(itertools.product(D, [None, *RD], [None, *InitialStatus])),
)
def test_combined_desired_status(
    desired: D,
    runtime: RD | None,
    initial: InitialStatus | None,
) -> None:
    found = combined_desired_status(desired, runtime, initial)
    if desired is D.STOPPED:
        expected = "Stopped"
    elif runtime is not None:
        expected = runtime.value
    elif initial is not None:
        expected = {"running": "Running", "paused": "Paused", "standby": "Standby"}[initial]
    else:
        expected = "Unavailable"
    assert found is CombinedDesiredStatus(expected)
