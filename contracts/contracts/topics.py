"""Topic names. Every service derives them from one prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """`Topics()` gives `pipelines.commands`, `pipelines.command-results`,
    `pipelines.events` and `pipelines.commands.dlq`."""

    prefix: str = "pipelines"

    def __post_init__(self) -> None:
        if not self.prefix:
            raise ValueError("topic prefix must not be empty")

    @property
    def commands(self) -> str:
        return f"{self.prefix}.commands"

    @property
    def command_results(self) -> str:
        return f"{self.prefix}.command-results"

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def commands_dlq(self) -> str:
        return f"{self.prefix}.commands.dlq"

    def all(self) -> tuple[str, str, str, str]:
        return (self.commands, self.command_results, self.events, self.commands_dlq)
