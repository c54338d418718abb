"""Process-local commit signals: "the event store of this database has just committed events".

Whatever waits for new events in the event store (the outbox relay; an orchestrator
following the ledger) would otherwise find them only at its next poll. When the writer
runs in the same process (`pipelines dev` runs every role in one), it can say so at once:
the writer calls `committed(key)` after its commit, and every callback registered for that
key with `listening(key, callback)` is called. `services.adapters.eventstore.EventStore`
signals after every successful save, so any writer through it needs nothing more.

This is process-local only: a writer in another process is heard by PostgreSQL's
LISTEN/NOTIFY or found by a poll. A signal is a hint that something may be new, never
the data: a listener reads the store as it would after a poll, and a missed or spurious
signal costs at most one poll interval or one empty read.

Keys name a database, not a connection or a store object, so two stores opened on the
same database share them: `store_key(url)` for an event store URL (the forms of
`open_event_store`), `env_key(env)` for the library settings made from one. Spell a URL
the same way everywhere (`localhost` and `127.0.0.1` are different keys).

Callbacks run in the committing thread, often a worker thread (`asyncio.to_thread`): they
must be quick and thread-safe. `on_loop(f)` wraps a function of the running event loop
(e.g. `Sweep.wake`) so the callback schedules it there with `call_soon_threadsafe`.

    with listening(store_key(url), on_loop(sweep.wake)):
        await sweep.run(stop)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping

log = logging.getLogger(__name__)

Callback = Callable[[], None]

_lock = threading.Lock()
_listeners: dict[str, list[Callback]] = {}


def env_key(env: Mapping[str, str]) -> str:
    """The key of the database that the library settings `env` open (as
    `services.adapters.eventstore.event_store_env` makes them)."""
    sqlite_name = env.get("SQLITE_DBNAME")
    if sqlite_name:
        memory = ":memory:" in sqlite_name or "mode=memory" in sqlite_name
        return f"sqlite:{sqlite_name if memory else os.path.realpath(sqlite_name)}"
    schema = env.get("POSTGRES_SCHEMA") or "public"
    return (
        f"postgresql://{env.get('POSTGRES_HOST')}:{env.get('POSTGRES_PORT', '5432')}"
        f"/{env.get('POSTGRES_DBNAME')}#{schema}"
    )


def store_key(url: str) -> str:
    """The key of the event store at `url`."""
    from services.adapters.eventstore import event_store_env  # it imports this module

    return env_key(event_store_env(url))


@contextlib.contextmanager
def listening(key: str, callback: Callback) -> Iterator[None]:
    """`callback()` after every commit signalled for `key`, until the block ends."""
    with _lock:
        _listeners.setdefault(key, []).append(callback)
    try:
        yield
    finally:
        with _lock:
            callbacks = _listeners.get(key, [])
            with contextlib.suppress(ValueError):
                callbacks.remove(callback)
            if not callbacks:
                _listeners.pop(key, None)


def committed(key: str) -> None:
    """Tell this process's listeners for `key` that events were committed (call it after
    the commit, from any thread). A failing callback is logged, never raised: the commit
    has happened whatever a listener does."""
    with _lock:
        callbacks = list(_listeners.get(key, ()))
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("A commit listener for %s failed", key)


def on_loop(function: Callback) -> Callback:
    """A thread-safe callback that runs `function` on the event loop running now. Once
    that loop is closed it does nothing (a listener left behind by a stopped loop)."""
    loop = asyncio.get_running_loop()

    def schedule() -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(function)

    return schedule


__all__ = ["Callback", "committed", "env_key", "listening", "on_loop", "store_key"]
