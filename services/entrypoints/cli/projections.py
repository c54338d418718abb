"""`pipelines projections rebuild`: the read models rebuilt from the event store."""

from __future__ import annotations

import typer

from services.entrypoints.cli.environment import configure_logging, settings


def rebuild() -> None:
    """Rebuild every read model from the event store into fresh tables, catch up with what
    the live projector applied meanwhile, then swap them in."""
    from rich.progress import Progress

    from services.runtimes.projector import rebuild_read_models, total_events

    configure_logging()
    found = settings()
    total = total_events(found)
    with Progress() as bar:
        task = bar.add_task("rebuilding read models", total=total or None)
        stats = rebuild_read_models(found, lambda done: bar.update(task, completed=done))
        bar.update(task, completed=total)
    typer.echo(
        f"rebuilt from {stats.events} events; {stats.caught_up} aggregates caught up; swapped in"
    )
