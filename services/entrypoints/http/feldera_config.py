"""Seeds 000/001: `GET /v0/config`, the instance's configuration as Feldera answers it.

Feldera's clients read it first: its Python SDK's `FelderaClient(...)` fetches it when it
is made (sending its API key, so it is authenticated like every `/v0` route) and compares
`version` with its own. We answer the edition "Open source" and the service's version;
the fields about telemetry, licenses and updates are empty (none of that exists here),
and `build_info` describes the Python build instead of a Rust one.
"""

from __future__ import annotations

import platform
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.entrypoints.http import error_docs
from services.entrypoints.http.pipeline_reads import NO_CACHE, PLATFORM_VERSION

EDITION: Final = "Open source"

router = APIRouter(prefix="/v0", tags=["pipelines"])


def configuration() -> dict[str, Any]:
    """Feldera's `Configuration` for this service."""
    return {
        "edition": EDITION,
        "version": PLATFORM_VERSION,
        "revision": "",
        "runtime_revision": "",
        "changelog_url": "",
        "build_source": "source",
        "build_info": {
            "build_timestamp": "",
            "build_cpu": platform.machine(),
            "build_os": platform.system(),
            "cargo_dependencies": "",
            "cargo_features": "",
            "cargo_debug": "",
            "cargo_opt_level": "",
            "cargo_target_triple": "",
            "rustc_version": "",
            "python_version": platform.python_version(),
        },
        "posthog": "",
        "conceptualhq": "",
        "product_fruits": "",
        "telemetry": "",
        "license_validity": None,
        "update_info": None,
        "unstable_features": None,
    }


@router.get(
    "/config",
    summary="Get the platform configuration",
    description="Feldera's `Configuration`: edition `Open source`, the service's version.",
    responses=error_docs.feldera(),
)
async def get_config() -> JSONResponse:
    return JSONResponse(configuration(), headers=NO_CACHE)


__all__ = ["EDITION", "configuration", "router"]
