"""The fuzz tests' Hypothesis settings: profile `ci` (the default, a few seconds per test)
or `long` (`HYPOTHESIS_PROFILE=long`, for a run that has time to look harder).

Applied as a decorator (`@FUZZ`) rather than loaded as the global profile, so the other
property tests of the suite keep their own settings whatever this module is imported
with.
"""

from __future__ import annotations

import os
from typing import Final

from hypothesis import HealthCheck, settings

_SLOW_DATA: Final = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,  # a shared 2-core machine: timing is not what these tests check
    suppress_health_check=_SLOW_DATA,
    derandomize=True,  # the same examples every run: a CI failure reproduces locally
    database=None,
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=_SLOW_DATA,
)

PROFILE: Final = os.environ.get("HYPOTHESIS_PROFILE", "ci")
FUZZ: Final = settings.get_profile(PROFILE if PROFILE in ("ci", "long") else "ci")


def scaled(examples: int) -> settings:
    """`FUZZ` with `examples` in the ci profile (a costlier test runs fewer) and the long
    profile's count otherwise."""
    if PROFILE == "long":
        return FUZZ
    return settings(FUZZ, max_examples=examples)
