"""The adapter registry: built-ins, extension, and what the validator reads from a spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from domain.adapters import BUILTIN_ADAPTERS, AdapterRegistry, AdapterSpec
from domain.validation import validate_config
from tests.domain.config_documents import one_route_document


def one_step(step: dict[str, Any]) -> dict[str, Any]:
    return one_route_document([step], route="r", version="1")


def codes(step: dict[str, Any], registry: AdapterRegistry = BUILTIN_ADAPTERS) -> list[str]:
    report, _ = validate_config(one_step(step), registry)
    return [i.code for i in report.issues]


def test_builtins() -> None:
    assert sorted(BUILTIN_ADAPTERS) == ["delay", "fail", "filter", "map", "pass_through"]
    assert BUILTIN_ADAPTERS["map"].required == frozenset({"fields"})
    assert BUILTIN_ADAPTERS["delay"].required == frozenset({"seconds"})
    assert BUILTIN_ADAPTERS["fail"].optional == frozenset({"message"})
    assert BUILTIN_ADAPTERS["filter"].requires_condition
    assert BUILTIN_ADAPTERS["pass_through"].fields == frozenset()


@pytest.mark.parametrize(
    "step",
    [
        {"type": "pass_through"},
        {"type": "map", "config": {"fields": {"a": "{payload.x}", "b": "literal"}}},
        {"type": "filter", "condition": {"field": "x", "operator": "exists", "value": True}},
        {"type": "delay", "config": {"seconds": 2}},
        {"type": "fail"},
        {
            "type": "fail",
            "config": {"message": "boom"},
            "condition": {"field": "payload.kind", "operator": "in", "value": ["a", "b"]},
        },
    ],
)
def test_builtin_steps_that_are_right(step: dict[str, Any]) -> None:
    assert codes(step) == []


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"type": "pass_through", "config": {"x": 1}}, ["E301"]),
        ({"type": "map", "config": {"fields": {}}}, ["E303"]),
        ({"type": "map", "config": {"fields": {"a": 3}}}, ["E303"]),
        ({"type": "map"}, ["E302"]),
        ({"type": "delay", "config": {"seconds": True}}, ["E303"]),
        ({"type": "fail", "config": {"message": 7}}, ["E303"]),
        ({"type": "filter"}, ["E105"]),
        (
            {"type": "filter", "condition": {"field": "x", "operator": "gte", "value": False}},
            ["E106"],
        ),
    ],
)
def test_builtin_steps_that_are_wrong(step: dict[str, Any], expected: list[str]) -> None:
    assert codes(step) == expected


def test_with_specs_adds_a_type_without_changing_the_original() -> None:
    def check(config: Mapping[str, Any]) -> list[tuple[str, str]]:
        return (
            [] if str(config.get("url", "")).startswith("https://") else [("url", "must be https")]
        )

    fetch = AdapterSpec(
        "http_fetch",
        required=frozenset({"url"}),
        optional=frozenset({"timeout"}),
        description="GET a URL.",
        check=check,
    )
    extended = BUILTIN_ADAPTERS.with_specs(fetch)
    assert "http_fetch" in extended and "http_fetch" not in BUILTIN_ADAPTERS
    assert len(extended) == len(BUILTIN_ADAPTERS) + 1
    step = {"type": "http_fetch", "config": {"url": "https://x.org"}}
    assert codes(step) == ["E103"]
    assert codes(step, extended) == []
    assert codes({"type": "http_fetch", "config": {"url": "ftp://x"}}, extended) == ["E303"]


def test_with_specs_replaces_a_spec_of_the_same_name() -> None:
    strict_delay = AdapterSpec("delay", required=frozenset({"seconds", "jitter"}))
    replaced = BUILTIN_ADAPTERS.with_specs(strict_delay)
    assert replaced["delay"] is strict_delay
    assert codes({"type": "delay", "config": {"seconds": 1}}, replaced) == ["E302"]


def test_a_registry_refuses_two_specs_of_one_name() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        AdapterRegistry([AdapterSpec("x"), AdapterSpec("x")])


def test_an_empty_registry_rejects_every_type() -> None:
    assert codes({"type": "pass_through"}, AdapterRegistry()) == ["E103"]
