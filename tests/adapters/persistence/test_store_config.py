"""How a URL becomes the library's settings, and what those settings guarantee."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import OperationalError
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from services.adapters.eventstore import EventStore, event_store_env, open_event_store
from tests.adapters.persistence.aggregates import Counter


def test_sqlite_urls_map_to_paths_relative_absolute_and_memory(tmp_path: Path) -> None:
    absolute = tmp_path / "sub" / "events.db"

    assert event_store_env(f"sqlite:///{absolute}")["SQLITE_DBNAME"] == str(absolute)
    assert absolute.parent.is_dir()  # created so a fresh machine can start
    assert event_store_env("sqlite:///rel/events.db", lock_timeout_s=7) == {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": "rel/events.db",
        "SQLITE_LOCK_TIMEOUT": "7",
    }
    assert event_store_env("sqlite:///:memory:")["SQLITE_DBNAME"] == ":memory:"


def test_postgres_url_maps_credentials_schema_and_lock_timeout() -> None:
    env = event_store_env(
        "postgresql://app%40x:s%3Acret@db.example:6543/pipes?options=-c%20search_path%3Dtenant_a,public",
        lock_timeout_s=3,
    )

    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("app@x", "s:cret")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("db.example", "6543")
    assert (env["POSTGRES_DBNAME"], env["POSTGRES_SCHEMA"]) == ("pipes", "tenant_a")
    assert env["POSTGRES_LOCK_TIMEOUT"] == "3"
    assert env["POSTGRES_ENABLE_DB_FUNCTIONS"] == "n"
    plain = event_store_env("postgresql://postgres@localhost/db")
    assert (plain["POSTGRES_PORT"], plain["POSTGRES_PASSWORD"]) == ("5432", "")
    assert "POSTGRES_SCHEMA" not in plain


@pytest.mark.parametrize(
    "url", ["mysql://u@h/db", "postgresql://u@h/", "postgresql://h/db", "sqlite:///"]
)
def test_unusable_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValueError):
        event_store_env(url)


def test_process_environment_does_not_choose_persistence(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.postgres")
    monkeypatch.setenv("POSTGRES_DBNAME", "nowhere")

    with open_event_store(sqlite_url) as store:
        assert isinstance(store.recorder, SQLiteApplicationRecorder)


@pytest.mark.postgres
def test_blocked_postgres_writer_fails_after_lock_timeout(postgres_url: str) -> None:
    with open_event_store(postgres_url, lock_timeout_s=1) as store:
        assert isinstance(store.recorder, PostgresApplicationRecorder)
        schema = store.env["POSTGRES_SCHEMA"]
        table = store.recorder.events_table_name
        with psycopg.connect(postgres_url) as blocker:
            blocker.execute(f'LOCK TABLE "{schema}".{table} IN EXCLUSIVE MODE')
            started = time.monotonic()
            with pytest.raises(OperationalError, match="lock timeout"):
                store.save(Counter("blocked"))
            # The library retries an OperationalError 10 times, 0.2 s apart.
            assert 1 <= time.monotonic() - started < 10 * (1 + 0.3) + 3
        store.save(Counter("unblocked"))  # the lock is gone with the blocker's transaction


class ExtendedStore(EventStore):
    """What a later role (e.g. the command handler) does to add behaviour."""


def test_a_subclass_reads_and_writes_the_same_tables(store_url: str) -> None:
    with open_event_store(store_url) as base:
        counter = Counter("shared")
        base.save(counter)
        with open_event_store(store_url, store_class=ExtendedStore) as extended:
            loaded: Counter = extended.repository.get(counter.id)
            assert isinstance(extended, ExtendedStore)
            assert extended.name == base.name
            assert loaded.name == "shared"


@pytest.mark.postgres
def test_processes_opening_a_fresh_postgres_schema_together_all_succeed(
    postgres_url: str,
) -> None:
    # Each open creates the library's tables and functions; unserialized, concurrent opens
    # on a fresh schema failed with "tuple concurrently updated".
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    barrier = Barrier(6)

    def open_and_close(_: int) -> str:
        barrier.wait()
        store = open_event_store(postgres_url)
        try:
            return type(store.recorder).__name__
        finally:
            store.close()

    with ThreadPoolExecutor(6) as pool:
        names = list(pool.map(open_and_close, range(6)))
    assert names == ["PostgresApplicationRecorder"] * 6
