"""A role opening the SQLite store while another connection holds its write lock past the
busy timeout (roles started together beside a busy handler) waits and opens, instead of
ending with "database is locked"."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from services.adapters.command_records import recorder_env
from services.adapters.eventstore import open_event_store


def test_opening_a_write_locked_sqlite_store_tries_again(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    url = f"sqlite:///{path}"
    # Another role creating the tables of a fresh file: it holds the write lock.
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE other_role (x INTEGER)")
    release = threading.Timer(2.0, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        # The busy timeout (1 s) runs out before the lock is released (2 s).
        store = open_event_store(url, lock_timeout_s=1, extra_env=recorder_env(url))
        store.close()
    finally:
        release.join()
        holder.close()
