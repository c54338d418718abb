"""Adapter plug-ins for the entry-point tests: what an installed package would name in its
`pipeline_service.adapters` entry points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.adapters import AdapterSpec
from services.runtimes.routes.adapters import AdapterContext


def _check_times(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    times = config.get("times", 2)
    if isinstance(times, bool) or not isinstance(times, int) or times < 0:
        return [("times", "must be a whole number >= 0")]
    return []


class Repeat:
    """A class entry point: fans one payload out into `times` copies, each numbered."""

    spec = AdapterSpec(
        "repeat",
        optional=frozenset({"times"}),
        description="Emits `times` copies of the payload, with `copy` set to 0, 1, ...",
        check=_check_times,
    )

    async def apply(
        self, payload: dict[str, Any], config: Mapping[str, Any], context: AdapterContext
    ) -> list[dict[str, Any]]:
        return [{**payload, "copy": n, "by": context.route} for n in range(config.get("times", 2))]


class _Upper:
    spec = AdapterSpec("upper", required=frozenset({"field"}), description="Upper-cases a field.")

    async def apply(
        self, payload: dict[str, Any], config: Mapping[str, Any], context: AdapterContext
    ) -> list[dict[str, Any]]:
        field = config["field"]
        return [{**payload, field: str(payload[field]).upper()}]


upper = _Upper()  # an object entry point


class Crashes:
    spec = AdapterSpec("crashes")

    async def apply(
        self, payload: dict[str, Any], config: Mapping[str, Any], context: AdapterContext
    ) -> list[dict[str, Any]]:
        raise ZeroDivisionError("division by zero")


class NotAList:
    spec = AdapterSpec("not_a_list")

    async def apply(
        self, payload: dict[str, Any], config: Mapping[str, Any], context: AdapterContext
    ) -> Any:
        return payload


class NotJson:
    spec = AdapterSpec("not_json")

    async def apply(
        self, payload: dict[str, Any], config: Mapping[str, Any], context: AdapterContext
    ) -> list[dict[str, Any]]:
        return [{"when": object()}]


class NoSpec:
    async def apply(
        self, payload: dict[str, Any], config: Mapping[str, Any], context: AdapterContext
    ) -> list[dict[str, Any]]:
        return [payload]


class SyncApply:
    spec = AdapterSpec("sync_apply")

    def apply(
        self, payload: dict[str, Any], config: Mapping[str, Any], context: AdapterContext
    ) -> list[dict[str, Any]]:
        return [payload]


class ReplacesMap:
    spec = AdapterSpec("map")

    async def apply(
        self, payload: dict[str, Any], config: Mapping[str, Any], context: AdapterContext
    ) -> list[dict[str, Any]]:
        return [payload]
