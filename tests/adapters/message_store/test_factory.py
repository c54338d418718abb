"""Which message store a process opens: `PIPELINES_MESSAGE_STORE`, the database store by
default (in the event store's database, SQLite or PostgreSQL) or files under
`PIPELINES_EXECUTION_STORAGE_DIR`; any other value is refused when the settings are read."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.adapters.message_store import (
    DatabaseMessageStore,
    FileMessageStore,
    open_message_store,
)
from services.settings import Settings
from tests.adapters.message_store.support import EXECUTION, message


def settings(tmp_path: Path, url: str, **more: object) -> Settings:
    return Settings(event_store_url=url, execution_storage_dir=str(tmp_path / "ex"), **more)


def test_the_default_is_the_event_stores_database(tmp_path: Path, store_url: str) -> None:
    with closing(open_message_store(settings(tmp_path, store_url))) as store:
        assert isinstance(store, DatabaseMessageStore)
        assert store.db.url == store_url
        store.store_consumed("a", "t", [message({})])
        assert store.db.table_exists("route_messages")
    assert not (tmp_path / "ex").exists()


def test_files_are_under_the_execution_storage_dir(tmp_path: Path, sqlite_url: str) -> None:
    chosen = settings(tmp_path, sqlite_url, message_store="files")
    with closing(open_message_store(chosen)) as store:
        assert isinstance(store, FileMessageStore)
        store.store_consumed("a", "t", [message({})])
    assert (tmp_path / "ex" / str(EXECUTION) / "a" / "in").is_dir()


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINES_MESSAGE_STORE", raising=False)
    assert Settings().message_store == "database"
    monkeypatch.setenv("PIPELINES_MESSAGE_STORE", "files")
    assert Settings().message_store == "files"
    monkeypatch.setenv("PIPELINES_MESSAGE_STORE", "s3")
    with pytest.raises(ValidationError, match="message_store"):
        Settings()
