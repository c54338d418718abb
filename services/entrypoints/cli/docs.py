"""`pipelines docs asyncapi`: the AsyncAPI document of the Kafka interface, regenerated
(FastStream, imported only here) or checked for drift."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def asyncapi(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the JSON document; the YAML goes beside it "
            "(default: docs/asyncapi.json in the source checkout)."
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if the files are stale.")
    ] = False,
) -> None:
    """Regenerate the AsyncAPI document of the Kafka interface (FastStream, from the
    contracts) as JSON and YAML."""
    from services.entrypoints import asyncapi as document

    target = out if out is not None else document.DOCUMENT
    if check:
        stale = document.drift(target)
        for path in stale:
            typer.echo(f"stale: {path}")
        if stale:
            raise typer.Exit(1)
        typer.echo(f"up to date: {target}")
        return
    changed = document.write(target)
    for path in changed:
        typer.echo(f"updated: {path}")
    if not changed:
        typer.echo(f"up to date: {target}")
