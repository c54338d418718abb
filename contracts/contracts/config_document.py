"""The pipeline config document: the wire format other services submit (YAML or JSON).

FactFlow's config shape with Kafka topics in place of queues. The models are strict
(no string-to-number coercion) so a submitted document means exactly what it says;
defaults are filled in, so `model_dump(mode="json")` is the normalized document.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class ConditionOperator(StrEnum):
    """How a condition compares the message field named by `field` with `value`.

    `in`/`not_in` take a list; `matches` takes a regular expression (search semantics);
    `exists` takes a boolean (true: the field must be present; false: absent);
    `gt`/`gte`/`lt`/`lte` compare numbers.
    """

    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    MATCHES = "matches"
    EXISTS = "exists"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


NonEmptyStr = Annotated[str, Field(min_length=1)]


class Condition(_Strict):
    """Applies an adapter only to messages whose `field` (dotted path) satisfies the test."""

    field: NonEmptyStr
    # Enum values arrive as plain strings from JSON and YAML alike: accept them.
    operator: Annotated[ConditionOperator, Field(strict=False)]
    value: Any = None


class AdapterStep(_Strict):
    """One step of a route: a registered adapter type, its config and an optional condition."""

    type: NonEmptyStr
    config: dict[str, Any] = Field(default_factory=dict)
    condition: Condition | None = None


class Inbound(_Strict):
    topic: str
    concurrency: int = Field(default=1, ge=1)
    prefetch: int = Field(default=10, ge=1)


class ErrorHandling(_Strict):
    max_retries: int = Field(default=3, ge=0)
    retry_delay_seconds: float = Field(default=1.0, ge=0)
    dead_letter_topic: str | None = None


class RouteSpec(_Strict):
    """A named lane: consumes `inbound.topic`, runs `adapters` in order, writes `outbound`."""

    name: NonEmptyStr
    description: str | None = None
    inbound: Inbound
    adapters: list[AdapterStep] = Field(default_factory=list)
    error_handling: ErrorHandling = Field(default_factory=ErrorHandling)
    outbound: list[str] = Field(default_factory=list)


class InitMessage(_Strict):
    """The first message of every execution: published to `route`'s inbound topic."""

    route: NonEmptyStr
    payload: dict[str, Any] = Field(default_factory=dict)


class ConfigDocument(_Strict):
    """`routes` is keyed by route id; routes know each other only through topics."""

    version: NonEmptyStr
    routes: dict[str, RouteSpec]
    init_message: InitMessage
