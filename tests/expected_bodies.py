"""Error bodies the seeds spell out verbatim, written once for every test that expects one
(the domain's refusal, the API's answer, the answer with a real reconciler behind it)."""

from __future__ import annotations

from typing import Any, Final

# `/start` while the pipeline is stopping, as the seeds answer it.
STOPPING_BODY: Final[dict[str, Any]] = {
    "message": "Deployment resources status (current: 'Stopping', desired: 'Stopped') cannot "
    "have desired changed to 'Provisioned'. Cannot restart the pipeline while it is stopping. "
    "Wait for it to stop before starting a new instance of the pipeline.",
    "error_code": "IllegalPipelineAction",
    "details": {
        "status": "Stopping",
        "current_desired_status": "Stopped",
        "new_desired_status": "Provisioned",
        "hint": "Cannot restart the pipeline while it is stopping. Wait for it to stop before "
        "starting a new instance of the pipeline.",
    },
}
