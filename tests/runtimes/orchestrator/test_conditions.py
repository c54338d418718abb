"""Every condition operator, on present, missing and wrongly typed fields; and the field
paths conditions and templates share."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from contracts.config_document import Condition, ConditionOperator
from services.runtimes.routes.conditions import MISSING, OPERATORS, evaluate, field_value, same

EXECUTION = UUID("0190a000-0000-7000-8000-000000000001")
MESSAGE = UUID("0190a000-0000-7000-8000-000000000002")

PAYLOAD: dict[str, Any] = {
    "kind": "order",
    "amount": 12.5,
    "count": 3,
    "ok": True,
    "nothing": None,
    "tags": ["a", "b", 1],
    "order": {"id": 7, "lines": [{"sku": "X-1"}, {"sku": "Y-2"}]},
    "route": "payload's own route field",
}
VIEW: dict[str, Any] = {
    "payload": PAYLOAD,
    "id": str(MESSAGE),
    "execution_id": str(EXECUTION),
    "route": "init",
    "stage": 0,
    "correlation_id": "corr-1",
}

Op = ConditionOperator

# (operator, field, value, expected)
CASES: list[tuple[ConditionOperator, str, Any, bool]] = [
    (Op.EQUALS, "kind", "order", True),
    (Op.EQUALS, "payload.kind", "order", True),
    (Op.EQUALS, "kind", "refund", False),
    (Op.EQUALS, "count", 3.0, True),
    (Op.EQUALS, "ok", 1, False),  # JSON true is not 1
    (Op.EQUALS, "count", True, False),
    (Op.EQUALS, "nothing", None, True),
    (Op.EQUALS, "absent", None, False),  # missing is not null
    (Op.EQUALS, "order.lines.1.sku", "Y-2", True),
    (Op.EQUALS, "order", {"id": 7, "lines": [{"sku": "X-1"}, {"sku": "Y-2"}]}, True),
    (Op.EQUALS, "route", "init", True),  # an envelope name
    (Op.EQUALS, "payload.route", "payload's own route field", True),
    (Op.EQUALS, "execution_id", str(EXECUTION), True),
    (Op.NOT_EQUALS, "kind", "refund", True),
    (Op.NOT_EQUALS, "kind", "order", False),
    (Op.NOT_EQUALS, "absent", "x", True),
    (Op.IN, "kind", ["order", "refund"], True),
    (Op.IN, "kind", ["refund"], False),
    (Op.IN, "ok", [1, 2], False),
    (Op.IN, "absent", [None], False),
    (Op.NOT_IN, "kind", ["refund"], True),
    (Op.NOT_IN, "kind", ["order"], False),
    (Op.NOT_IN, "absent", ["x"], True),
    (Op.CONTAINS, "kind", "rde", True),
    (Op.CONTAINS, "kind", "xyz", False),
    (Op.CONTAINS, "tags", "b", True),
    (Op.CONTAINS, "tags", 1, True),
    (Op.CONTAINS, "tags", True, False),
    (Op.CONTAINS, "order", "lines", True),
    (Op.CONTAINS, "order", "sku", False),
    (Op.CONTAINS, "count", 3, False),
    (Op.CONTAINS, "absent", "x", False),
    (Op.MATCHES, "order.lines.0.sku", r"^[A-Z]-\d$", True),
    (Op.MATCHES, "kind", "^ref", False),
    (Op.MATCHES, "kind", "rd", True),  # a search, not a full match
    (Op.MATCHES, "count", "3", False),  # not a string
    (Op.MATCHES, "absent", ".*", False),
    (Op.EXISTS, "kind", True, True),
    (Op.EXISTS, "nothing", True, True),  # present, even if null
    (Op.EXISTS, "absent", True, False),
    (Op.EXISTS, "absent", False, True),
    (Op.EXISTS, "kind", False, False),
    (Op.EXISTS, "tags.5", True, False),
    (Op.EXISTS, "tags.x", True, False),
    (Op.EXISTS, "kind.deeper", True, False),
    (Op.GT, "amount", 12, True),
    (Op.GT, "amount", 12.5, False),
    (Op.GT, "kind", 1, False),  # not a number
    (Op.GT, "ok", 0, False),  # a boolean is not a number
    (Op.GT, "absent", 0, False),
    (Op.GTE, "amount", 12.5, True),
    (Op.GTE, "count", 4, False),
    (Op.LT, "count", 4, True),
    (Op.LT, "count", 3, False),
    (Op.LT, "nothing", 1, False),
    (Op.LTE, "count", 3, True),
    (Op.LTE, "amount", 12, False),
]


@pytest.mark.parametrize(("operator", "field", "value", "expected"), CASES)
def test_operator(operator: ConditionOperator, field: str, value: Any, expected: bool) -> None:
    condition = Condition(field=field, operator=operator, value=value)
    assert evaluate(condition, VIEW) is expected


def test_every_operator_has_a_rule_and_cases() -> None:
    assert set(OPERATORS) == set(ConditionOperator)
    covered = {operator for operator, *_ in CASES}
    assert covered == set(ConditionOperator)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("order.id", 7),
        ("payload.order.id", 7),
        ("order.lines.1.sku", "Y-2"),
        ("stage", 0),
        ("correlation_id", "corr-1"),
        ("tags.-1", MISSING),
        ("tags.01", "b"),
        ("order.id.x", MISSING),
        ("payload", PAYLOAD),
    ],
)
def test_field_paths(path: str, expected: Any) -> None:
    value = field_value(VIEW, path)
    if expected is MISSING:
        assert value is MISSING
    else:
        assert value == expected


def test_same_tells_booleans_from_numbers_at_any_depth() -> None:
    assert same([1, {"a": 2}], [1.0, {"a": 2}])
    assert not same([1], [True])
    assert not same({"a": False}, {"a": 0})
    assert not same({"a": 1}, {"a": 1, "b": 2})
