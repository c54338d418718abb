"""A handler whose read of a database beside the event store fails (a PostgreSQL restart
under the orchestrator gate, a locked SQLite file) fails the batch, so it is decided again
later; it is never answered, and never recorded, as the command's InternalError."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from contracts import CreatePipeline
from services.adapters.stores import open_command_store
from services.service_layer.decider import Decider
from services.service_layer.handlers import HANDLERS
from services.service_layer.handling import Context, Decision
from tests.service_layer.decider_support import Clock, accepted, item


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.InterfaceError("the connection is closed"),
        sqlite3.OperationalError("database is locked"),
    ],
    ids=["pg-admin-shutdown", "pg-connection-closed", "sqlite-locked"],
)
def test_a_database_failure_in_a_handler_fails_the_batch_and_is_decided_again(
    sqlite_url: str, error: Exception
) -> None:
    failing = {"on": True}

    def create(cmd: CreatePipeline, ctx: Context) -> Decision:
        if failing["on"]:
            raise error
        return HANDLERS[CreatePipeline](cmd, ctx)

    with open_command_store(sqlite_url) as store:
        decider = Decider(store, {**HANDLERS, CreatePipeline: create}, clock=Clock())
        command = item(CreatePipeline(name="p1"))
        with pytest.raises(type(error)):
            decider.decide([command])
        assert decider.recorder.select_processed([command.command_id]) == {}

        failing["on"] = False  # the database is back: the redelivered batch goes through
        (outcome,) = decider.decide([command])
        assert accepted(outcome.result).http_status == 201
