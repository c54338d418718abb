"""`pipelines projections rebuild`: the read models rebuilt from the event store, with a
progress bar (events applied of the event store's total, and the rate)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from services.entrypoints.cli.environment import configure_logging, settings

if TYPE_CHECKING:
    from rich.progress import Progress


def progress_bar() -> Progress:
    """Description, bar, `done/total`, events per second, elapsed and remaining time."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            # rich's own estimate (recent samples) while running, the average once done
            speed = task.finished_speed or task.speed
            if speed is None and task.elapsed:
                speed = task.completed / task.elapsed
            return Text("" if speed is None else f"{speed:,.0f} events/s")

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def rebuild() -> None:
    """Rebuild every read model from the event store into fresh tables, catch up with what
    the live projector applied meanwhile, then swap them in."""
    from services.runtimes.projector import rebuild_read_models, total_events

    configure_logging()
    found = settings()
    total = total_events(found)
    with progress_bar() as bar:
        task = bar.add_task("rebuilding read models", total=total or None)
        stats = rebuild_read_models(found, lambda done: bar.update(task, completed=done))
        bar.update(task, completed=stats.events, total=stats.events)
    typer.echo(
        f"rebuilt from {stats.events} events; {stats.caught_up} aggregates caught up; swapped in"
    )
