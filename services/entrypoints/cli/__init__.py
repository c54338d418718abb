"""The `pipelines` command line: run the service (`dev`, `serve`), talk to it (`send`,
`replay`, `events tail`), check on it (`health`), work its commands DLQ (`dlq`), manage
its API keys (`api-keys`), rebuild its read models (`projections rebuild`) and
regenerate its documents (`docs asyncapi`).

One module per sub-command; this one only builds the typer app from them. Every module
imports what a command needs (the HTTP app, FastStream, aiokafka, eventsourcing, psycopg,
the roles) inside the command, so `pipelines --help` and the start of `pipelines send`
stay quick (tests/entrypoints/cli/test_cli_imports.py guards it).
"""

from __future__ import annotations

import typer

from services.entrypoints.cli import (
    api_keys,
    dlq,
    docs,
    events,
    executions,
    projections,
    replay,
    run,
    send,
)
from services.entrypoints.cli.send import build_command, parse_fields

app = typer.Typer(no_args_is_help=True, help="Event-sourced control plane for data pipelines.")

app.command()(run.dev)
app.command()(run.serve)
app.command()(run.health)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(send.send)
app.command()(replay.replay)

events_app = typer.Typer(no_args_is_help=True, help="Lifecycle events on the events topic.")
events_app.command("tail")(events.tail)
app.add_typer(events_app, name="events")

executions_app = typer.Typer(no_args_is_help=True, help="Executions, through the HTTP API.")
executions_app.command("watch")(executions.watch)
app.add_typer(executions_app, name="executions")

projections_app = typer.Typer(no_args_is_help=True, help="The read models.")
projections_app.command("rebuild")(projections.rebuild)
app.add_typer(projections_app, name="projections")

api_keys_app = typer.Typer(no_args_is_help=True, help="API keys of the HTTP API.")
api_keys_app.command("create")(api_keys.create)
api_keys_app.command("list")(api_keys.list_keys)
api_keys_app.command("revoke")(api_keys.revoke)
app.add_typer(api_keys_app, name="api-keys")

dlq_app = typer.Typer(no_args_is_help=True, help="The commands DLQ: list, show, redrive.")
dlq_app.command("list")(dlq.list_messages)
dlq_app.command("show")(dlq.show)
dlq_app.command("redrive")(dlq.redrive)
app.add_typer(dlq_app, name="dlq")

docs_app = typer.Typer(no_args_is_help=True, help="The interface's documents.")
docs_app.command("asyncapi")(docs.asyncapi)
app.add_typer(docs_app, name="docs")

__all__ = ["app", "build_command", "parse_fields"]
