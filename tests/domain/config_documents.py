"""Config documents of one route, for the tests that need a valid document and the
smallest change to one (a fresh copy each call: a test may edit what it gets)."""

from __future__ import annotations

import copy
from typing import Any

# A map step reading the init payload's url, and the init message that carries one.
MAP_STEP: dict[str, Any] = {"type": "map", "config": {"fields": {"u": "{payload.url}"}}}
FETCH_INIT: dict[str, Any] = {"route": "fetch", "payload": {"url": "https://a", "opts": {"n": 1}}}


def one_route_document(
    adapters: list[dict[str, Any]],
    *,
    route: str = "fetch",
    version: str = "1.0",
    dead_letter: bool = True,
    init_message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One route, `route`: named after its id, reading `<route>.in` and dead-lettering to
    `<route>.dlq` (unless not `dead_letter`); the init message goes to `route` with no
    payload, unless `init_message` is given."""
    return copy.deepcopy(
        {
            "version": version,
            "routes": {
                route: {
                    "name": route.capitalize(),
                    "inbound": {"topic": f"{route}.in"},
                    "adapters": adapters,
                    "error_handling": {"dead_letter_topic": f"{route}.dlq"} if dead_letter else {},
                }
            },
            "init_message": init_message or {"route": route},
        }
    )
