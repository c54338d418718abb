"""Adapter-step conditions, and the field paths they and `map` templates read.

A step sees a message view: `payload` (the JSON object the step was given) beside the
envelope names `id`, `execution_id`, `route` (the route that produced the message, `init`
for an execution's init message), `stage` and `correlation_id`. A path starts at one of
these names (`payload.order.id`, `execution_id`); a path whose first name is none of them
is read in the payload, so `order.id` means `payload.order.id`. Every further name is a key
of a JSON object or an index of a JSON array (`items.0`). A path that leads nowhere is
MISSING, never an error.

How each operator treats a missing field or a value of another type is one row of
`OPERATORS`: only `not_equals`, `not_in` and `exists: false` are true for a missing field;
numbers never equal booleans (JSON `true` is not `1`); `gt`/`gte`/`lt`/`lte` are false
unless both sides are numbers; `matches` is a regular-expression search in a string field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from contracts.config_document import Condition, ConditionOperator


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
ENVELOPE_NAMES: Final = frozenset(
    {"payload", "id", "execution_id", "route", "stage", "correlation_id"}
)


def lookup(view: Mapping[str, Any], keys: Sequence[str | int]) -> Any:
    """The value `keys` lead to in `view` (see the module docstring), or MISSING."""
    if not keys:
        return MISSING
    value: Any = view if keys[0] in ENVELOPE_NAMES else view["payload"]
    for key in keys:
        value = _child(value, key)
        if value is MISSING:
            break
    return value


def field_value(view: Mapping[str, Any], path: str) -> Any:
    """The value of the dotted `path` (a condition's `field`), or MISSING."""
    return lookup(view, path.split("."))


def _child(value: Any, key: str | int) -> Any:
    if isinstance(value, Mapping):
        return value.get(str(key), MISSING)
    if isinstance(value, list):
        if isinstance(key, str):
            if not (key.isascii() and key.isdigit()):
                return MISSING
            key = int(key)
        return value[key] if 0 <= key < len(value) else MISSING
    return MISSING


def same(a: Any, b: Any) -> bool:
    """JSON equality: like ==, except that a boolean equals only a boolean (in lists and
    objects too)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equals(actual: Any, expected: Any) -> bool:
    return actual is not MISSING and same(actual, expected)


def _in(actual: Any, expected: Any) -> bool:
    return (
        actual is not MISSING
        and isinstance(expected, list)
        and any(same(actual, v) for v in expected)
    )


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    if isinstance(actual, list):
        return any(same(item, expected) for item in actual)
    if isinstance(actual, dict):
        return isinstance(expected, str) and expected in actual
    return False


@lru_cache(maxsize=256)
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def _matches(actual: Any, expected: Any) -> bool:
    # An invalid expression is refused by validation (E106); re.error here is a bug report.
    return (
        isinstance(actual, str)
        and isinstance(expected, str)
        and bool(_pattern(expected).search(actual))
    )


def _compare(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda actual, expected: _number(actual) and _number(expected) and test(actual, expected)


OPERATORS: Final[dict[ConditionOperator, Callable[[Any, Any], bool]]] = {
    ConditionOperator.EQUALS: _equals,
    ConditionOperator.NOT_EQUALS: lambda actual, expected: not _equals(actual, expected),
    ConditionOperator.IN: _in,
    ConditionOperator.NOT_IN: lambda actual, expected: not _in(actual, expected),
    ConditionOperator.CONTAINS: _contains,
    ConditionOperator.MATCHES: _matches,
    ConditionOperator.EXISTS: lambda actual, expected: (actual is not MISSING) == bool(expected),
    ConditionOperator.GT: _compare(lambda a, b: a > b),
    ConditionOperator.GTE: _compare(lambda a, b: a >= b),
    ConditionOperator.LT: _compare(lambda a, b: a < b),
    ConditionOperator.LTE: _compare(lambda a, b: a <= b),
}


def evaluate(condition: Condition, view: Mapping[str, Any]) -> bool:
    """Whether the message `view` satisfies `condition`."""
    return OPERATORS[condition.operator](field_value(view, condition.field), condition.value)
