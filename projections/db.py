"""One connection to the read-model database, SQLite (sqlite3) or PostgreSQL (psycopg),
chosen by URL, with the few differences between them kept here.

SQL is written once with `?` placeholders (PostgreSQL gets `%s`). A write transaction
takes the database's write lock first (SQLite `BEGIN IMMEDIATE`; PostgreSQL a lock on
the versions table that conflicts with the rebuild's swap), so nothing read inside it
can be replaced underneath.

Tables are created one way for every store in the event store's database (read models,
route ledger, heartbeats, checkpoints, API keys): `Database.create_tables`. PostgreSQL
races on its catalog when two processes create the same table at once, even with IF NOT
EXISTS, so on PostgreSQL the statements run under the advisory lock `SCHEMA_LOCK_KEY`,
the same key the event store holds while it creates its own tables
(services.adapters.eventstore): all table creation in one database takes turns. A store
that also adds columns to an existing table does it in the same `schema_transaction`,
after reading the catalog (`columns`, `indexed`) again under the lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Final, Self
from urllib.parse import urlsplit, urlunsplit

import psycopg

Params = Sequence[Any]

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
CONNECT_TIMEOUT_S = 10
SQLITE_BUSY_TIMEOUT_S = 30.0
# Any fixed number: the advisory lock that serializes table creation ("pipeline").
SCHEMA_LOCK_KEY: Final = 0x706970656C696E65


class Database:
    """Thread-safe by a lock: one statement or transaction at a time per instance."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            self._path = url.removeprefix("sqlite:///")
            if not self._path:
                raise ValueError(f"No SQLite path in read store URL {url!r}")
        elif urlsplit(url).scheme in _POSTGRES_SCHEMES:
            self.dialect = "postgresql"
            self._path = urlunsplit(urlsplit(url)._replace(scheme="postgresql"))
        else:
            raise ValueError(f"Unsupported read store URL {url!r}: use sqlite:/// or postgresql://")
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | psycopg.Connection[Any] | None = None

    # --- connection --------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection | psycopg.Connection[Any]:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _connect(self) -> sqlite3.Connection | psycopg.Connection[Any]:
        if self.dialect == "sqlite":
            if ":memory:" not in self._path:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self._path,
                isolation_level=None,  # we BEGIN and COMMIT ourselves
                check_same_thread=False,  # the lock serialises use across threads
                timeout=SQLITE_BUSY_TIMEOUT_S,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        # No server-side prepared statements: a rebuild swaps tables under the same names.
        return psycopg.connect(
            self._path, autocommit=True, prepare_threshold=None, connect_timeout=CONNECT_TIMEOUT_S
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _drop_broken(self) -> None:
        # A failed PostgreSQL connection is not reused; the next call reconnects.
        if isinstance(self._conn, psycopg.Connection) and self._conn.broken:
            self.close()

    # --- statements --------------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        return statement if self.dialect == "sqlite" else statement.replace("?", "%s")

    def query(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """A read outside any transaction (autocommit)."""
        with self._lock:
            try:
                return _fetch(self._connection().execute(self._sql(statement), params))
            except Exception:
                self._drop_broken()
                raise

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self._lock:
            conn = self._connection()
            try:
                if isinstance(conn, sqlite3.Connection):
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield Cursor(self, conn)
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
                else:
                    with conn.transaction():
                        yield Cursor(self, conn)
            except Exception:
                self._drop_broken()
                raise

    @contextmanager
    def schema_transaction(self) -> Iterator[Cursor]:
        """A transaction that changes the schema, on PostgreSQL under the advisory lock
        every table creation takes (`SCHEMA_LOCK_KEY`); SQLite's write lock serialises it."""
        with self.transaction() as cursor:
            if self.dialect == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK_KEY,))
                self._create_missing_schema(cursor)
            yield cursor

    def _create_missing_schema(self, cursor: Cursor) -> None:
        """The search path's first schema, when it does not exist yet: a role whose first
        open is a read model's (or the message store's) must not wait for the event
        store's open to create it."""
        if self._read("SELECT current_schema()", (), cursor)[0][0] is not None:
            return
        path = str(self._read("SELECT current_setting('search_path')", (), cursor)[0][0])
        first = path.split(",")[0].strip().strip('"')
        if first and first != "$user":
            quoted = '"' + first.replace('"', '""') + '"'
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")

    def create_tables(self, statements: Iterable[str]) -> None:
        """Run `CREATE ... IF NOT EXISTS` statements in one `schema_transaction`."""
        with self.schema_transaction() as cursor:
            for statement in statements:
                cursor.execute(statement)

    # --- the catalog: outside any transaction, or inside `cursor`'s ----------------------------
    # PostgreSQL resolves names with to_regclass, as unqualified SQL does: through the
    # search path.

    def table_exists(self, table: str, cursor: Cursor | None = None) -> bool:
        if self.dialect == "sqlite":
            statement = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
            return bool(self._read(statement, (table,), cursor))
        return bool(self._read("SELECT to_regclass(?) IS NOT NULL", (table,), cursor)[0][0])

    def columns(self, table: str, cursor: Cursor | None = None) -> list[str]:
        """The table's column names in their order ([] for a table that does not exist)."""
        if self.dialect == "sqlite":
            statement = "SELECT name FROM pragma_table_info(?) ORDER BY cid"
        else:
            statement = (
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(?) "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
            )
        return [str(name) for (name,) in self._read(statement, (table,), cursor)]

    def indexed(self, table: str, cursor: Cursor | None = None) -> set[tuple[str, ...]]:
        """The column lists of the table's indexes (its primary key's among them)."""
        if self.dialect == "sqlite":
            statement = (
                "SELECT l.name, i.name FROM pragma_index_list(?) l "
                "JOIN pragma_index_info(l.name) i ORDER BY l.name, i.seqno"
            )
        else:
            statement = (
                "SELECT x.indexrelid, a.attname FROM pg_index x "
                "CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) "
                "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
                "WHERE x.indrelid = to_regclass(?) ORDER BY x.indexrelid, k.n"
            )
        by_index: dict[Any, list[str]] = {}
        for index, column in self._read(statement, (table,), cursor):
            by_index.setdefault(index, []).append(str(column))
        return {tuple(columns) for columns in by_index.values()}

    def _read(self, statement: str, params: Params, cursor: Cursor | None) -> list[tuple[Any, ...]]:
        if cursor is None:
            return self.query(statement, params)
        return cursor.execute(statement, params)


class TableStore:
    """A store that owns one connection to `url` and creates its `TABLES` (CREATE ... IF
    NOT EXISTS statements) when opened. Synchronous: call it off the event loop."""

    TABLES: ClassVar[Sequence[str]] = ()

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        try:
            self.create_tables()
        except BaseException:
            self.db.close()
            raise

    def create_tables(self) -> None:
        self.db.create_tables(self.TABLES)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Cursor:
    """Statements inside one transaction."""

    def __init__(self, db: Database, conn: sqlite3.Connection | psycopg.Connection[Any]) -> None:
        self.db = db
        self.dialect = db.dialect
        self._conn = conn

    def execute(self, statement: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return _fetch(self._conn.execute(self.db._sql(statement), params))

    def executemany(self, statement: str, rows: Sequence[Params]) -> None:
        if not rows:
            return
        if isinstance(self._conn, sqlite3.Connection):
            self._conn.executemany(statement, rows)
        else:
            with self._conn.cursor() as cursor:
                cursor.executemany(self.db._sql(statement), rows)


def _fetch(cursor: sqlite3.Cursor | psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
    if cursor.description is None:
        return []
    return [tuple(row) for row in cursor.fetchall()]
