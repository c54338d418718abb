"""How `init_payload_overrides` (seed 004) combine with a config's init payload.

`deep_merge(base, override)` returns a new mapping; neither argument is changed:

- a key only in `base` keeps its value; a key only in `override` is added;
- where both hold a dict, the two dicts merge by these same rules, recursively;
- anything else in `override` replaces the base value outright: a list replaces a list
  (lists are never concatenated or merged by index), a scalar replaces a dict and a dict
  replaces a scalar, and an explicit `None` sets the value to null (it does not delete the
  key: an override cannot remove a field, only null it).

Values are copied, so the result shares no mutable structure with either input: an
aggregate may keep it without later edits of the caller's dicts leaking in.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {key: copy.deepcopy(value) for key, value in base.items()}
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
