"""Per execution and route, which messages are expected and which were consumed or failed:
the counts completion is decided on (ours, never broker offsets).

One row per (execution_id, route, message_id) in `route_ledger`, in the event store's own
database (SQLite or PostgreSQL). A route marks its outputs `expected` by every route that
consumes their topic, and its input `consumed` (or `failed` when it dead-lettered it),
after its outputs were acknowledged, in one transaction (`settle_many`). Expecting the
outputs in the transaction that consumes their input keeps the drained rule exact: until
it commits, the input's row is unconsumed; once it has, every output's row exists, and a
row a fast consumer made first (consumed, not yet expected) cannot drain anything either.
Every operation is one transaction of idempotent upserts, so a redelivered message
changes nothing.

What each route published goes to `route_outputs (execution_id, route, message_id)`
(`route` is the producing route): a route's "messages out", outputs to topics no route of
the config reads included, which `route_ledger` (keyed by the consuming route) cannot
count. It is bookkeeping only: completion never reads it.

An execution has drained when it has at least one row and every row is expected and
consumed and none failed. Check `drained` after the consuming transaction has committed,
never inside it: two routes committing their last consumptions at once would each read the
other's row as unconsumed inside their own transactions, and neither would see the end.

All queries select by execution id first: the primary key (execution_id, route,
message_id) is their index.

Retention: an execution's rows go with its stored messages (`forget`, called by the
orchestrator role's retention sweep for the executions the message store swept), so a
lineage replay has both or neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, NamedTuple, TypeAlias
from uuid import UUID

from projections.db import TableStore

LEDGER_TABLE: Final = "route_ledger"
OUTPUTS_TABLE: Final = "route_outputs"
_CHUNK: Final = 400

Rows: TypeAlias = Iterable[tuple[UUID, str, UUID]]
"""(execution id, route, message id) rows."""

_CREATE: Final = (
    f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ("
    "execution_id TEXT NOT NULL, route TEXT NOT NULL, message_id TEXT NOT NULL, "
    "expected INTEGER NOT NULL DEFAULT 0, consumed INTEGER NOT NULL DEFAULT 0, "
    "failed INTEGER NOT NULL DEFAULT 0, "
    "PRIMARY KEY (execution_id, route, message_id))"
)


_CREATE_OUTPUTS: Final = (
    f"CREATE TABLE IF NOT EXISTS {OUTPUTS_TABLE} ("
    "execution_id TEXT NOT NULL, route TEXT NOT NULL, message_id TEXT NOT NULL, "
    "PRIMARY KEY (execution_id, route, message_id))"
)


class _Write(NamedTuple):
    """A multi-row upsert: `head`, then `row` once per row, comma-separated, then `tail`.
    One statement per chunk of rows instead of one per row: on PostgreSQL each statement
    is a server round trip even when pipelined."""

    head: str
    row: str
    tail: str

    def statement(self, count: int) -> str:
        return f"{self.head} {', '.join([self.row] * count)} {self.tail}"


_KEY: Final = "(execution_id, route, message_id)"
_PRODUCE: Final = _Write(
    f"INSERT INTO {OUTPUTS_TABLE} {_KEY} VALUES", "(?, ?, ?)", f"ON CONFLICT {_KEY} DO NOTHING"
)


def _upsert(column: str) -> _Write:
    return _Write(
        f"INSERT INTO {LEDGER_TABLE} (execution_id, route, message_id, {column}) VALUES",
        "(?, ?, ?, 1)",
        f"ON CONFLICT {_KEY} DO UPDATE SET {column} = 1",
    )


_EXPECT: Final = _upsert("expected")
_CONSUME: Final = _upsert("consumed")
_FAIL: Final = _upsert("failed")
_MARKS: Final = ("expected", "consumed", "failed")


@cache
def _marking(count: int) -> str:
    """One upsert of `count` rows that each set some of the three marks (a 1 sets, a 0
    leaves the stored mark alone): a batch's whole `route_ledger` write in one statement
    per chunk, so its row locks are taken in one key order however many marks it sets."""
    rows = ", ".join(["(?, ?, ?, ?, ?, ?)"] * count)
    kept = ", ".join(
        f"{m} = CASE WHEN excluded.{m} = 1 THEN 1 ELSE {LEDGER_TABLE}.{m} END" for m in _MARKS
    )
    return (
        f"INSERT INTO {LEDGER_TABLE} (execution_id, route, message_id, {', '.join(_MARKS)}) "
        f"VALUES {rows} ON CONFLICT {_KEY} DO UPDATE SET {kept}"
    )


Write: TypeAlias = tuple[str, list[Any]]
"""One statement (`?` placeholders) and its parameters."""
# A PostgreSQL statement takes at most 65,535 parameters; a settlement that needs more
# (batches of thousands of records) runs as a transaction of separate statements.
_MAX_JOINED_PARAMS: Final = 60_000


def joined(writes: Sequence[Write]) -> Write:
    """`writes` as one PostgreSQL statement: all but the last as data-modifying `WITH`
    clauses. One statement is one round trip and, on an autocommit connection, one
    transaction of its own (all of it or nothing); a transaction of N statements costs
    N + 2 round trips. The writes must not touch one row twice (PostgreSQL refuses)."""
    clauses = ", ".join(f"w{index} AS ({sql})" for index, (sql, _) in enumerate(writes[:-1]))
    statement = writes[-1][0] if not clauses else f"WITH {clauses} {writes[-1][0]}"
    return statement, [value for _, params in writes for value in params]


class RouteCounts(NamedTuple):
    expected: int
    consumed: int
    failed: int


class RouteProgress(NamedTuple):
    """One route's part of an execution, as its stage run reports it."""

    messages_in: int  # consumed or dead-lettered
    messages_out: int  # published
    messages_failed: int  # dead-lettered
    outstanding: int = 0  # expected, not consumed or dead-lettered yet


@dataclass(frozen=True)
class ExecutionProgress:
    """An execution's ledger at one moment: per route progress, and the verdicts."""

    routes: Mapping[str, RouteProgress]
    drained: bool  # at least one row, every row expected and consumed, none failed
    failed: bool  # some route dead-lettered one of its messages

    @classmethod
    def empty(cls) -> ExecutionProgress:
        return cls({}, drained=False, failed=False)

    def of(self, route: str) -> RouteProgress:
        return self.routes.get(route, RouteProgress(0, 0, 0, 0))


class Ledger(TableStore):
    """Synchronous (call it off the event loop); owns one connection to `url`."""

    TABLES = (_CREATE, _CREATE_OUTPUTS)

    # --- writes (one transaction each) ---------------------------------------------------

    def expect(self, execution_id: UUID, messages: Iterable[tuple[str, UUID]]) -> None:
        """`messages`: (consuming route, message id) pairs expected in the execution."""
        self.expect_many((execution_id, r, m) for r, m in messages)

    def expect_many(self, rows: Rows) -> None:
        """Rows of several executions, in one transaction."""
        self._write(_EXPECT, _texts(rows))

    def consume(self, execution_id: UUID, route: str, message_ids: Iterable[UUID]) -> None:
        self.consume_many((execution_id, route, m) for m in message_ids)

    def consume_many(self, rows: Rows) -> None:
        self._write(_CONSUME, _texts(rows))

    def fail(self, execution_id: UUID, route: str, message_ids: Iterable[UUID]) -> None:
        self.fail_many((execution_id, route, m) for m in message_ids)

    def fail_many(self, rows: Rows) -> None:
        self._write(_FAIL, _texts(rows))

    def produce_many(self, rows: Rows) -> None:
        """Rows of what the routes published (`route` is the producing route)."""
        self._write(_PRODUCE, _texts(rows))

    def settle_many(
        self,
        produced: Rows,
        consumed: Rows,
        failed: Rows = (),
        *,
        expected: Rows = (),
        also: Sequence[Write] = (),
    ) -> None:
        """A batch's outcome in one transaction: `also` first (the batch's stored
        messages, when they live in this database), then what the batch published
        (`produce_many`) and the marks: the outputs `expected`, the inputs `consumed` and
        those dead-lettered `failed`. One commit for the whole batch, never half of it;
        on PostgreSQL one statement (`joined`), so one round trip."""
        marks: dict[tuple[str, str, str], list[int]] = {}
        for index, rows in enumerate((expected, consumed, failed)):
            for row in _texts(rows):
                marks.setdefault(row, [0, 0, 0])[index] = 1
        writes = list(also)
        # In key order, so concurrent settlements of the same rows lock them in one order
        # and never deadlock.
        ordered = sorted(marks)
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            writes.append((_marking(len(chunk)), [v for row in chunk for v in (*row, *marks[row])]))
        writes.extend(_writes(_PRODUCE, _texts(produced)))
        self._commit(writes)

    def _commit(self, writes: Sequence[Write]) -> None:
        if not writes:
            return
        if (
            self.db.dialect == "postgresql"
            and sum(len(params) for _, params in writes) <= _MAX_JOINED_PARAMS
        ):
            # Autocommit: the one statement is its own transaction.
            self.db.query(*joined(writes))
            return
        with self.db.transaction() as cursor:
            for statement, params in writes:
                cursor.execute(statement, params)

    def forget(self, execution_ids: Iterable[UUID]) -> int:
        """Delete the executions' rows from both tables, one transaction per execution
        (short locks); returns how many rows went."""
        removed = 0
        for execution in sorted({str(e) for e in execution_ids}):
            with self.db.transaction() as cursor:
                for table in (LEDGER_TABLE, OUTPUTS_TABLE):
                    ((count,),) = cursor.execute(
                        f"SELECT COUNT(*) FROM {table} WHERE execution_id = ?", (execution,)
                    )
                    cursor.execute(f"DELETE FROM {table} WHERE execution_id = ?", (execution,))
                    removed += int(count)
        return removed

    def _write(self, write: _Write, rows: list[tuple[str, str, str]]) -> None:
        self._write_all((write, rows))

    def _write_all(self, *writes: tuple[_Write, list[tuple[str, str, str]]]) -> None:
        statements = [w for write, rows in writes for w in _writes(write, rows)]
        if statements:
            with self.db.transaction() as cursor:
                for statement, params in statements:
                    cursor.execute(statement, params)

    # --- reads ---------------------------------------------------------------------------

    def already_consumed(self, execution_id: UUID, route: str, message_id: UUID) -> bool:
        """Whether `route` has handled the message: consumed it, or dead-lettered it."""
        return (execution_id, message_id) in self.consumed_among(
            route, [(execution_id, message_id)]
        )

    def consumed_among(
        self, route: str, messages: Iterable[tuple[UUID, UUID]]
    ) -> set[tuple[UUID, UUID]]:
        """The (execution id, message id) pairs among `messages` that `route` has handled
        (consumed or failed)."""
        wanted = set(messages)
        if not wanted:
            return set()
        executions = sorted({str(e) for e, _ in wanted})
        ids = sorted({str(m) for _, m in wanted})
        found: set[tuple[UUID, UUID]] = set()
        # Chunked so the parameter count stays small; the primary key serves each probe.
        for e_start in range(0, len(executions), _CHUNK):
            e_chunk = executions[e_start : e_start + _CHUNK]
            for m_start in range(0, len(ids), _CHUNK):
                m_chunk = ids[m_start : m_start + _CHUNK]
                rows = self.db.query(
                    f"SELECT execution_id, message_id FROM {LEDGER_TABLE} "
                    f"WHERE execution_id IN ({_marks(e_chunk)}) AND route = ? "
                    f"AND message_id IN ({_marks(m_chunk)}) AND (consumed = 1 OR failed = 1)",
                    [*e_chunk, route, *m_chunk],
                )
                found.update((UUID(e), UUID(m)) for e, m in rows)
        return found & wanted

    def counts(self, execution_id: UUID) -> dict[str, RouteCounts]:
        """Per route: how many messages are expected, consumed and failed."""
        rows = self.db.query(
            f"SELECT route, SUM(expected), SUM(consumed), SUM(failed) FROM {LEDGER_TABLE} "
            "WHERE execution_id = ? GROUP BY route ORDER BY route",
            (str(execution_id),),
        )
        return {str(r): RouteCounts(int(e), int(c), int(f)) for r, e, c, f in rows}

    def drained(self, execution_id: UUID) -> bool:
        """At least one row, every row expected and consumed, none failed."""
        ((total, settled),) = self.db.query(
            f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN expected = 1 AND consumed = 1 "
            f"AND failed = 0 THEN 1 ELSE 0 END), 0) FROM {LEDGER_TABLE} WHERE execution_id = ?",
            (str(execution_id),),
        )
        return int(total) > 0 and int(settled) == int(total)

    def drained_among(self, execution_ids: Iterable[UUID]) -> set[UUID]:
        """The executions among `execution_ids` that have drained (`drained`), in one
        grouped query per chunk instead of one query each."""
        ids = sorted({str(e) for e in execution_ids})
        found: set[UUID] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = self.db.query(
                "SELECT execution_id FROM "
                f"{LEDGER_TABLE} WHERE execution_id IN ({_marks(chunk)}) GROUP BY execution_id "
                "HAVING SUM(CASE WHEN expected = 1 AND consumed = 1 AND failed = 0 "
                "THEN 1 ELSE 0 END) = COUNT(*)",
                chunk,
            )
            found.update(UUID(str(e)) for (e,) in rows)
        return found

    def progress(self, execution_ids: Iterable[UUID]) -> dict[UUID, ExecutionProgress]:
        """Each execution's progress, in two grouped queries for all of them (the
        orchestrator's sweep asks about every live execution at once)."""
        ids = sorted({str(e) for e in execution_ids})
        # execution -> route -> (rows, settled, handled, failed, outstanding)
        ledger: dict[str, dict[str, tuple[int, int, int, int, int]]] = {}
        outputs: dict[str, dict[str, int]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = self.db.query(
                "SELECT execution_id, route, COUNT(*), "
                "COALESCE(SUM(CASE WHEN expected = 1 AND consumed = 1 AND failed = 0 "
                "THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN consumed = 1 OR failed = 1 THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(failed), 0), "
                "COALESCE(SUM(CASE WHEN consumed = 0 AND failed = 0 THEN 1 ELSE 0 END), 0) "
                f"FROM {LEDGER_TABLE} "
                f"WHERE execution_id IN ({_marks(chunk)}) GROUP BY execution_id, route",
                chunk,
            )
            for execution, route, *numbers in rows:
                total, settled, handled, failed, outstanding = (int(n) for n in numbers)
                ledger.setdefault(str(execution), {})[str(route)] = (
                    total,
                    settled,
                    handled,
                    failed,
                    outstanding,
                )
            rows = self.db.query(
                f"SELECT execution_id, route, COUNT(*) FROM {OUTPUTS_TABLE} "
                f"WHERE execution_id IN ({_marks(chunk)}) GROUP BY execution_id, route",
                chunk,
            )
            for execution, route, count in rows:
                outputs.setdefault(str(execution), {})[str(route)] = int(count)
        found: dict[UUID, ExecutionProgress] = {}
        for execution in ids:
            rows_of = ledger.get(execution, {})
            out_of = outputs.get(execution, {})
            routes = {}
            for route in sorted({*rows_of, *out_of}):
                _, _, handled, failed, outstanding = rows_of.get(route, (0, 0, 0, 0, 0))
                routes[route] = RouteProgress(handled, out_of.get(route, 0), failed, outstanding)
            total = sum(r[0] for r in rows_of.values())
            settled = sum(r[1] for r in rows_of.values())
            found[UUID(execution)] = ExecutionProgress(
                routes,
                drained=total > 0 and settled == total,
                failed=any(r[3] for r in rows_of.values()),
            )
        return found

    def unfinished(self, execution_id: UUID) -> list[tuple[str, UUID]]:
        """(route, message id) of every message the execution's routes were given and did
        not finish: expected and not consumed, or dead-lettered (a lineage replay's
        work), by route and id."""
        rows = self.db.query(
            f"SELECT route, message_id FROM {LEDGER_TABLE} WHERE execution_id = ? "
            "AND expected = 1 AND (consumed = 0 OR failed = 1) ORDER BY route, message_id",
            (str(execution_id),),
        )
        return [(str(route), UUID(str(message))) for route, message in rows]

    def failed_any(self, execution_id: UUID) -> bool:
        rows = self.db.query(
            f"SELECT 1 FROM {LEDGER_TABLE} WHERE execution_id = ? AND failed = 1 LIMIT 1",
            (str(execution_id),),
        )
        return bool(rows)


def _writes(write: _Write, rows: list[tuple[str, str, str]]) -> list[Write]:
    # Without repeats (PostgreSQL refuses to update one row twice in a statement), and in
    # one order for every writer, so concurrent upserts of the same rows take their row
    # locks in the same order and never deadlock.
    unique = sorted(set(rows))
    return [
        (write.statement(len(chunk)), [v for row in chunk for v in row])
        for chunk in (unique[start : start + _CHUNK] for start in range(0, len(unique), _CHUNK))
    ]


def _texts(rows: Rows) -> list[tuple[str, str, str]]:
    return [(str(e), r, str(m)) for e, r, m in rows]


def _marks(values: list[str]) -> str:
    return ", ".join("?" * len(values))


__all__ = [
    "LEDGER_TABLE",
    "OUTPUTS_TABLE",
    "ExecutionProgress",
    "Ledger",
    "RouteCounts",
    "RouteProgress",
    "Rows",
    "Write",
    "joined",
]
