"""The base every command model extends (its wire name and its Kafka key), and the ids of
commands derived from what they were decided on."""

from __future__ import annotations

from typing import Annotated
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field
from uuid6 import uuid7

PipelineName = Annotated[str, Field(min_length=1, description="Unique pipeline name")]


def new_id() -> UUID:
    """A fresh UUIDv7 as a plain `uuid.UUID` (ids sort by creation time)."""
    return UUID(int=uuid7().int)


class DecidedCommandIds:
    """Command ids a role derives from what it decided on (UUIDv5s in a namespace of their
    own): the same decision by `role` on one version of one aggregate is one command
    however often, and by whichever process, it is sent, so the command handler answers a
    repeat from its records instead of deciding it again."""

    def __init__(self, decider: str) -> None:
        self.namespace = uuid5(NAMESPACE_URL, f"urn:pipeline-service:{decider}")

    def __call__(self, role: str, aggregate_id: UUID, version: int, decision: str) -> UUID:
        return uuid5(self.namespace, f"{role}/{aggregate_id}/{version}/{decision}")


class Command(BaseModel):
    """A request to change one aggregate. Unknown fields are refused, not ignored.

    The wire name (CloudEvents `ce_type`) is the class name. `key()` is the Kafka key:
    the natural key of the aggregate the command is ordered with, so one aggregate's
    commands stay in one partition, in the order they were sent.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def command_type(cls) -> str:
        return cls.__name__

    def key(self) -> str | None:
        """The Kafka key; `None` means the command has no aggregate: key by command id."""
        raise NotImplementedError(f"{type(self).__name__} must define key()")


class PipelineCommand(Command):
    """A command on an existing pipeline, addressed (and keyed) by its current name."""

    pipeline_name: PipelineName

    def key(self) -> str:
        return self.pipeline_name
