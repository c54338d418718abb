"""ReplayExecution: re-run part of a finished (or running) config execution as a new child
execution (docs/replay.md). Seed 004's `POST /api/v1/executions/{execution_id}/replay`
sends it; so can any producer on the commands topic.

`execution_id` is the child's id (a fresh UUIDv7 the encoder always writes, as RunConfig's
is); the command id decides the replay, so one command sent three times is one child.
`parent` is the parent's execution id or its tag. Keyed by the parent: replays of one
execution are decided in the order they were sent.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from pydantic import Field, model_validator

from contracts.command_base import Command, new_id
from contracts.statuses import ReplaySource

MAX_MANUAL_MESSAGES: Final = 10_000


class ReplayDirection(StrEnum):
    """Which of the stage's stored messages a storage replay republishes."""

    CONSUMED = "consumed"
    PRODUCED = "produced"


class ReplayExecution(Command):
    """Publish stored (or given) messages of `parent` to `to_route` of a new child
    execution, whose routes start without the init message."""

    parent: str = Field(min_length=1, description="The parent's execution id or tag")
    execution_id: UUID = Field(default_factory=new_id, description="The child's id")
    replay_source: ReplaySource = ReplaySource.STORAGE
    from_stage: str | None = Field(
        default=None,
        min_length=1,
        description="The route whose stored messages are replayed (`route` or `route/stage`)",
    )
    to_route: str | None = Field(
        default=None, min_length=1, description="The child's route the messages go to"
    )
    direction: ReplayDirection = ReplayDirection.CONSUMED
    from_path: str | None = Field(
        default=None,
        min_length=1,
        description="manual: stored messages as `{execution_id}/{route}/{consumed|produced}`",
    )
    messages: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=MAX_MANUAL_MESSAGES,
        description="manual: the payloads to publish, in order",
    )
    only_failed: bool = Field(default=False, description="Only messages that failed")
    init_payload_overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Deep-merged into every replayed payload (from the init route: the "
        "init payload), as RunConfig merges its overrides",
    )
    dry_run: bool = Field(default=False, description="Answer the plan; change nothing")
    allow_large: bool = Field(
        default=False,
        description="Replay more than PIPELINES_REPLAY_MAX_MESSAGES messages",
    )
    config_id: UUID | None = Field(
        default=None, description="Run the child on another config's routes"
    )
    config_version: int | None = Field(
        default=None, ge=1, description="Run the child on this version of its config"
    )
    tag: str | None = Field(default=None, min_length=1, description="Unique tag of the child")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _source_fields(self) -> ReplayExecution:
        manual = self.replay_source is ReplaySource.MANUAL
        if manual and (self.from_path is None) == (self.messages is None):
            raise ValueError("a manual replay takes exactly one of from_path and messages")
        if not manual and (self.from_path is not None or self.messages is not None):
            raise ValueError("from_path and messages are for replay_source manual")
        if self.replay_source is ReplaySource.STORAGE and self.from_stage is None:
            raise ValueError("a storage replay needs from_stage")
        return self

    def key(self) -> str:
        return self.parent


__all__ = ["MAX_MANUAL_MESSAGES", "ReplayDirection", "ReplayExecution"]
