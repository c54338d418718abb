"""Commit signals (services.adapters.commit_signals): a save through the event store tells
this process's listeners for its database, and only those; keys name the database, so two
stores (or two spellings of a SQLite path) on one database share them."""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.adapters import commit_signals
from services.adapters.eventstore import open_event_store
from tests.adapters.persistence.aggregates import Counter


def test_a_save_signals_the_listeners_of_its_database_only(tmp_path: Path) -> None:
    url, other = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    heard: list[str] = []
    with (
        open_event_store(url) as store,
        commit_signals.listening(commit_signals.store_key(url), lambda: heard.append("a")),
        commit_signals.listening(commit_signals.store_key(other), lambda: heard.append("b")),
    ):
        assert store.commit_key == commit_signals.store_key(url)
        store.save(Counter(name="one"))
    assert heard == ["a"]


def test_a_listener_hears_nothing_once_its_block_has_ended(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    heard: list[int] = []
    with open_event_store(url) as store:
        with commit_signals.listening(store.commit_key, lambda: heard.append(1)):
            store.save(Counter(name="one"))
        store.save(Counter(name="two"))
    assert heard == [1]


def test_a_failing_listener_neither_fails_the_save_nor_silences_the_others(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    heard: list[int] = []

    def broken() -> None:
        raise RuntimeError("listener bug")

    with (
        open_event_store(url) as store,
        commit_signals.listening(store.commit_key, broken),
        commit_signals.listening(store.commit_key, lambda: heard.append(1)),
    ):
        counter = Counter(name="one")
        store.save(counter)
        assert store.repository.get(counter.id).name == "one"
    assert heard == [1]


def test_a_save_of_no_events_signals_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    heard: list[int] = []
    with (
        open_event_store(url) as store,
        commit_signals.listening(store.commit_key, lambda: heard.append(1)),
    ):
        counter = Counter(name="one")
        store.save(counter)
        store.save(counter)  # nothing new to record
    assert heard == [1]


def test_one_sqlite_file_is_one_key_however_its_path_is_spelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    os.mkdir("data")
    absolute = commit_signals.store_key(f"sqlite:///{tmp_path}/data/e.db")
    assert commit_signals.store_key("sqlite:///data/e.db") == absolute
    assert commit_signals.store_key("sqlite:///./data/../data/e.db") == absolute
    assert commit_signals.store_key("sqlite:///data/f.db") != absolute


def test_postgres_keys_name_the_database_and_schema() -> None:
    base = "postgresql://postgres@127.0.0.1:5432/test"
    key = commit_signals.store_key(base)
    assert commit_signals.store_key("postgresql://other:secret@127.0.0.1/test") == key
    assert commit_signals.store_key(f"{base}?options=-csearch_path%3Ds1") != key
    assert commit_signals.store_key("postgresql://postgres@127.0.0.1:5432/other") != key


async def test_on_loop_runs_the_function_on_its_loop_when_signalled_from_a_thread() -> None:
    woken = asyncio.Event()
    threads: list[int] = []

    def wake() -> None:
        threads.append(threading.get_ident())
        woken.set()

    key = f"test:{datetime.now(UTC).isoformat()}"
    with commit_signals.listening(key, commit_signals.on_loop(wake)):
        await asyncio.to_thread(commit_signals.committed, key)
        await asyncio.wait_for(woken.wait(), 10)
    assert threads == [threading.get_ident()]


def test_on_loop_does_nothing_once_its_loop_is_closed() -> None:
    async def make() -> commit_signals.Callback:
        return commit_signals.on_loop(lambda: None)

    loop = asyncio.new_event_loop()
    schedule = loop.run_until_complete(make())
    loop.close()
    schedule()  # no RuntimeError
