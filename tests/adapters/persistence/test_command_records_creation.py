"""Opening the event store (its table creation, services.adapters.command_records
`PostgresCommandRecorder._create_table`) while a handler is saving a batch must not
deadlock with it.

The save (eventsourcing's `insert_events`) writes the command records first
(`_insert_events`) and takes the events table's EXCLUSIVE lock after (`_insert_stored_events`).
The creation takes the events table's SHARE lock (`CREATE UNIQUE INDEX IF NOT EXISTS` on it
locks the table even when the index exists) and used to take processed_commands' after
(`CREATE INDEX IF NOT EXISTS ... processed_at`): the opposite order, so a role starting
beside a busy handler died of DeadlockDetected."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql

from services.adapters.command_records import PostgresCommandRecorder, recorder_env
from services.adapters.eventstore import open_event_store

pytestmark = pytest.mark.postgres


def _open_and_close(url: str) -> None:
    open_event_store(url, extra_env=recorder_env(url)).close()


def _waiting_on_a_lock(watcher: psycopg.Connection[tuple[object, ...]], pid: int) -> bool:
    """Whether a backend other than `pid` (the writer) waits on a table lock."""
    row = watcher.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> %s",
        (pid,),
    ).fetchone()
    return row is not None and int(str(row[0])) > 0


def test_opening_the_store_beside_a_save_in_progress_does_not_deadlock(postgres_url: str) -> None:
    with open_event_store(postgres_url, extra_env=recorder_env(postgres_url)) as store:
        recorder = store.recorder
        assert isinstance(recorder, PostgresCommandRecorder)
        schema = sql.Identifier(recorder.datastore.schema)
        events = sql.SQL("{}.{}").format(schema, sql.Identifier(recorder.events_table_name))
        processed = sql.SQL("{}.{}").format(schema, sql.Identifier("processed_commands"))
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with (
        psycopg.connect(conninfo, autocommit=True) as writer,
        psycopg.connect(conninfo, autocommit=True) as watcher,
        ThreadPoolExecutor(1) as pool,
    ):
        writer_pid = writer.info.backend_pid
        with writer.transaction():
            # A save's order: the command record first, the events table's lock second.
            writer.execute(
                sql.SQL("INSERT INTO {} (command_id, result, processed_at) VALUES (%s, %s, %s)")
                .format(processed),
                ("a-command", b"result", time.time()),
            )  # fmt: skip
            opening = pool.submit(_open_and_close, postgres_url)
            deadline = time.monotonic() + 30
            # The opener either finishes, or holds the events lock and waits for ours.
            while not opening.done() and not _waiting_on_a_lock(watcher, writer_pid):
                assert time.monotonic() < deadline, "the opener neither finished nor waited"
                time.sleep(0.05)
            writer.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(events))
        opening.result(timeout=60)  # re-raises the opener's DeadlockDetected, if any
