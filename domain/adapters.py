"""Adapter type registry: which adapter types a config may name and what config each takes.

A config names adapters only through this registry, never as importable code. Finding
plug-in adapters (entry points) is I/O and lives in services; it passes the resulting
registry in. `check` validates config values and returns `(field, problem)` pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from string import Formatter
from typing import Any

ConfigCheck = Callable[[Mapping[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True)
class AdapterSpec:
    name: str
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    description: str = ""
    requires_condition: bool = False
    check: ConfigCheck | None = None

    @property
    def fields(self) -> frozenset[str]:
        return self.required | self.optional


class AdapterRegistry(Mapping[str, AdapterSpec]):
    """An immutable name -> spec mapping; `with_specs` returns an extended copy."""

    def __init__(self, specs: Iterable[AdapterSpec] = ()) -> None:
        self._specs: dict[str, AdapterSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"adapter type {spec.name!r} is registered twice")
            self._specs[spec.name] = spec

    def with_specs(self, *specs: AdapterSpec) -> AdapterRegistry:
        """A new registry with `specs` added; a spec of the same name replaces the old one."""
        merged = dict(self._specs)
        merged.update((spec.name, spec) for spec in specs)
        return AdapterRegistry(merged.values())

    def __getitem__(self, name: str) -> AdapterSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"AdapterRegistry({sorted(self._specs)!r})"


def _check_map(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    if "fields" not in config:
        return []  # a missing required field is reported as such, not as a bad value
    fields = config["fields"]
    if not isinstance(fields, dict) or not fields:
        return [("fields", "must be a non-empty mapping of target field to template string")]
    problems: list[tuple[str, str]] = []
    for target, template in fields.items():
        if not isinstance(template, str):
            problems.append((f"fields.{target}", "template must be a string"))
            continue
        try:
            # Formatter.parse is the same grammar the runtime renders with.
            list(Formatter().parse(template))
        except ValueError as exc:
            problems.append((f"fields.{target}", f"must be a well-formed template ({exc})"))
    return problems


def _check_delay(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    if "seconds" not in config:
        return []  # a missing required field is reported as such, not as a bad value
    seconds = config["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return [("seconds", "must be a number of seconds >= 0")]
    return []


def _check_fail(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    if "message" in config and not isinstance(config["message"], str):
        return [("message", "must be a string")]
    return []


BUILTIN_ADAPTERS = AdapterRegistry(
    [
        AdapterSpec("pass_through", description="Forwards the message unchanged."),
        AdapterSpec(
            "map",
            required=frozenset({"fields"}),
            description="Builds the outgoing payload: target field -> template like '{payload.x}'.",
            check=_check_map,
        ),
        AdapterSpec(
            "filter",
            description="Drops messages that do not satisfy the step's condition.",
            requires_condition=True,
        ),
        AdapterSpec(
            "delay",
            required=frozenset({"seconds"}),
            description="Waits `seconds` before passing the message on.",
            check=_check_delay,
        ),
        AdapterSpec(
            "fail",
            optional=frozenset({"message"}),
            description="Raises with `message` when its condition matches (for testing "
            "error handling).",
            check=_check_fail,
        ),
    ]
)
