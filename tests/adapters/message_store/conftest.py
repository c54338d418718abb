"""Every message store: files in a folder, and the database store on SQLite and on
PostgreSQL. `open_store()` opens another store on the same folder or database (another
process, or another machine on PostgreSQL); all are closed after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.adapters.message_store import DatabaseMessageStore, FileMessageStore, MessageStore

Opener = Callable[[], MessageStore]


@pytest.fixture(params=["files", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == "files":
        root = tmp_path / "messages"

        def make() -> MessageStore:
            return FileMessageStore(root)

    else:
        url: str = request.getfixturevalue(f"{request.param}_url")

        def make() -> MessageStore:
            return DatabaseMessageStore(url)

    opened: list[MessageStore] = []

    def opener() -> MessageStore:
        opened.append(make())
        return opened[-1]

    yield opener
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Opener) -> MessageStore:
    return open_store()
