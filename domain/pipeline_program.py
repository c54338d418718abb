"""A pipeline's Feldera program (docs/pipeline-lifecycle.md, "Feldera's SDK"): the text
Feldera's clients send as `program_code`, the fields that go with it, and what its
validation made of it.

Our program is a config document. `program_code` (YAML or JSON text) is validated as
one; a valid one becomes the current version of the config the pipeline owns, whose id
is derived from the pipeline's (`owned_config_id`), so a pipeline's program always lives
in the same Config and every change of it is a new `config_version` there. An invalid
one leaves that config as it was and the pipeline's program status `SqlError`, the
validation report kept as its `program_error`, so it cannot be started until a valid
program replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final
from uuid import NAMESPACE_URL, UUID, uuid5

from contracts.statuses import ProgramStatus

JsonObject = dict[str, Any]

_OWNED_CONFIGS: Final = uuid5(NAMESPACE_URL, "urn:pipeline-service:pipeline-program")


def owned_config_id(pipeline_id: UUID) -> UUID:
    """The id of the config that holds the program `program_code` gave the pipeline."""
    return uuid5(_OWNED_CONFIGS, str(pipeline_id))


@dataclass(frozen=True)
class Program:
    """A pipeline's program as Feldera's fields hold it, with its validation: `status`
    Success (then `config_id` is the config running it) or SqlError (`report` says why).
    `report` is the ValidationReport as JSON, or None for a program given as a config id
    (its config passed validation when it was stored)."""

    program_code: str
    udf_rust: str = ""
    udf_toml: str = ""
    program_config: JsonObject = field(default_factory=dict)
    config_id: UUID | None = None
    status: ProgramStatus = ProgramStatus.PENDING
    report: JsonObject | None = None


__all__ = ["Program", "owned_config_id"]
