"""Config commands: seed 004's FactFlow config endpoints as messages.

`config_id` (CreateConfig) and `execution_id` (RunConfig) default to a fresh UUIDv7
when the model is built, and the encoder always writes them into the message: a
re-sent message therefore names the same aggregate and cannot create a second one.
A producer that leaves them out of the JSON gets an id made at decode time, so only
the command id then guards against duplicates: send the id.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import Field

from contracts.command_base import Command, new_id
from contracts.statuses import ReplaySource

# The FactFlow config document (contracts.config_document) as a JSON object or as
# YAML/JSON text; the domain parses and validates it so that a bad document is
# answered with a ValidationReport, not a schema violation.
ConfigDocumentInput = dict[str, Any] | str


class CreateConfig(Command):
    config_id: UUID = Field(default_factory=new_id)
    name: str = Field(min_length=1)
    document: ConfigDocumentInput
    description: str | None = Field(default=None, description="What the config is for")

    def key(self) -> str:
        return str(self.config_id)


class UpdateConfig(Command):
    """Replace the document (and optionally the name or the description); the config's
    version goes up."""

    config_id: UUID
    document: ConfigDocumentInput
    name: str | None = Field(default=None, min_length=1)
    description: str | None = Field(
        default=None, description="A new description (default: keep the description)"
    )

    def key(self) -> str:
        return str(self.config_id)


class DeleteConfig(Command):
    """Delete a config (seed 004 `DELETE /configs/{config_id}`, ours): refused (409
    ConfigInUse) while executions of it run or pipelines name it; its executions keep
    their history."""

    config_id: UUID

    def key(self) -> str:
        return str(self.config_id)


class ValidateConfig(Command):
    """Validate a document without storing anything: the answer is a ValidationReport."""

    document: ConfigDocumentInput

    def key(self) -> None:
        return None


class RunConfig(Command):
    """Start an execution of a config (seed 004 `POST /configs/{config_id}/run`).

    Keyed by the config, so a run is ordered after the config updates sent before it.
    """

    config_id: UUID
    execution_id: UUID = Field(default_factory=new_id)
    skip_init_message: bool = False
    tag: str | None = Field(default=None, min_length=1, description="Unique execution tag")
    init_payload_overrides: dict[str, Any] = Field(default_factory=dict)
    parent_execution_id: UUID | None = None
    replay_source: ReplaySource | None = None
    # FactFlow's `POST /api/v1/executions` body: what started the run (a scheduler's
    # name, a webhook's payload); kept with the execution (its facets), never interpreted.
    trigger_context: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> str:
        return str(self.config_id)
