"""Replay lineage in the executions read model, on SQLite and PostgreSQL: replays made
through the real decider carry their parent and root (in the row and in SQL columns), the
`parent_execution_id` / `root_execution_id` filters and `lineage` find them, and an
executions table created before those columns existed gets them when a store opens it:
its rows survive with NULL there until a rebuild fills them, new rows fill them at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest

from contracts import commands as cmd
from contracts.events import LifecycleEvent
from contracts.statuses import ReplaySource
from projections import executions
from projections.db import Database
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.rows import Row, dump
from projections.schema import EXECUTIONS, VERSIONS, Table
from projections.store import ReadStore
from projections.times import sort_key
from services.runtimes.projector import fetch_events_from
from services.service_layer.decider import Decider
from tests.projections.support import events_of
from tests.service_layer.decider_support import (
    accepted,
    config_document,
    decide_one,
    opened_decider,
)

LINEAGE_COLUMNS = ("parent_execution_id", "root_execution_id")
# The executions table as stores made it before it had the lineage columns.
OLD_EXECUTIONS = Table(
    EXECUTIONS.name,
    tuple(c for c in EXECUTIONS.columns if c[0] not in LINEAGE_COLUMNS),
    EXECUTIONS.primary_key,
    tuple(i for i in EXECUTIONS.indexes if i[0] not in LINEAGE_COLUMNS),
)


@dataclass
class Family:
    """root <- first <- grandchild, root <- second, root <- gone (deleted)."""

    root: str
    first: str
    second: str
    grandchild: str
    gone: str


def _id(decider: Decider, command: Any) -> str:
    found = accepted(decide_one(decider, command)).aggregate_id
    assert found is not None
    return found


def replay(decider: Decider, parent: str) -> str:
    """A manual replay of `parent` (no message store needed to decide it)."""
    command = cmd.ReplayExecution(
        parent=parent, replay_source=ReplaySource.MANUAL, to_route="fetch", messages=[{"n": 1}]
    )
    return _id(decider, command)


def family(decider: Decider) -> Family:
    config = UUID(_id(decider, cmd.CreateConfig(name="c", document=config_document())))
    root = _id(decider, cmd.RunConfig(config_id=config, tag="root"))
    first = replay(decider, "root")  # by tag
    second = replay(decider, root)
    grandchild = replay(decider, first)
    gone = replay(decider, root)
    decide_one(decider, cmd.DeleteRun(run_id=UUID(gone)))
    return Family(root, first, second, grandchild, gone)


@pytest.fixture
def history(store_url: str) -> Iterator[tuple[Decider, Family]]:
    with opened_decider(store_url) as decider:
        yield decider, family(decider)


def columns_of(read: ReadStore) -> dict[str, tuple[str | None, str | None]]:
    """Execution id -> its (parent, root) SQL columns."""
    rows = read.db.query(
        f"SELECT id, parent_execution_id, root_execution_id FROM {EXECUTIONS.physical()}"
    )
    return {str(i): (parent, root) for i, parent, root in rows}


def ids(found: tuple[int, list[Row]]) -> tuple[int, list[str]]:
    return found[0], [row["id"] for row in found[1]]


# --- replays in the read model ------------------------------------------------------------------


def test_replays_carry_their_parent_and_root(
    history: tuple[Decider, Family], read_store: ReadStore
) -> None:
    decider, f = history
    Projector(read_store).apply_batch(events_of(decider.store))
    rows = {i: read_store.get_execution(i) for i in (f.root, f.first, f.grandchild)}
    lineage = {i: (r["parent_execution_id"], r["root_execution_id"]) for i, r in rows.items() if r}
    assert lineage == {
        f.root: (None, None),
        f.first: (f.root, f.root),
        f.grandchild: (f.first, f.root),  # a replay of a replay names the first run
    }
    first = rows[f.first]
    assert first is not None and first["replay_source"] == "manual"
    columns = columns_of(read_store)
    assert {i: columns[i] for i in lineage} == lineage
    assert columns[f.gone] == (f.root, f.root)  # kept in the table, never answered


def test_the_filters_find_children_and_descendants_newest_first(
    history: tuple[Decider, Family], read_store: ReadStore
) -> None:
    decider, f = history
    Projector(read_store).apply_batch(events_of(decider.store))
    assert ids(read_store.list_executions(parent_execution_id=f.root)) == (2, [f.second, f.first])
    assert ids(read_store.list_executions(parent_execution_id=f.first)) == (1, [f.grandchild])
    assert ids(read_store.list_executions(parent_execution_id=f.grandchild)) == (0, [])
    descendants = read_store.list_executions(root_execution_id=f.root)
    assert ids(descendants) == (3, [f.grandchild, f.second, f.first])
    page = read_store.list_executions(parent_execution_id=f.root, limit=1, offset=1)
    assert ids(page) == (2, [f.first])
    both = read_store.list_executions(parent_execution_id=f.root, root_execution_id=f.root)
    assert ids(both) == (2, [f.second, f.first])


def test_lineage_names_root_parent_and_children(
    history: tuple[Decider, Family], read_store: ReadStore
) -> None:
    decider, f = history
    Projector(read_store).apply_batch(events_of(decider.store))
    assert read_store.lineage(f.root) == {
        "execution_id": f.root,
        "root_execution_id": None,
        "parent_execution_id": None,
        "children": [f.second, f.first],
        "children_total": 2,
    }
    assert read_store.lineage(f.first) == {
        "execution_id": f.first,
        "root_execution_id": f.root,
        "parent_execution_id": f.root,
        "children": [f.grandchild],
        "children_total": 1,
    }
    assert read_store.lineage(f.grandchild) == {
        "execution_id": f.grandchild,
        "root_execution_id": f.root,
        "parent_execution_id": f.first,
        "children": [],
        "children_total": 0,
    }
    assert read_store.lineage(f.gone) is None
    assert read_store.lineage("01a23798-0000-7000-8000-000000000000") is None


# --- an executions table from before the lineage columns -----------------------------------------


def _row(events: list[LifecycleEvent], execution_id: str) -> tuple[Row, int]:
    """The execution's row as the read model builds it, and its version."""
    row: Row | None = None
    version = 0
    for event in events:
        if event.aggregate_id == execution_id:
            row, version = executions.apply(event, row), event.version
    assert row is not None
    return row, version


def old_tables(url: str, events: list[LifecycleEvent], *execution_ids: str) -> None:
    """The executions and versions tables as an older store left them, holding the rows of
    `execution_ids` (their documents without the root, which old rows never had)."""
    names = [name for name, _ in OLD_EXECUTIONS.columns]
    db = Database(url)
    try:
        db.create_tables([*OLD_EXECUTIONS.create_statements(), *VERSIONS.create_statements()])
        with db.transaction() as cursor:
            for execution_id in execution_ids:
                row, version = _row(events, execution_id)
                doc = {k: v for k, v in row.items() if k not in ("stages", "root_execution_id")}
                values = {
                    **row,
                    "created_key": sort_key(row["created_at"]),
                    "started_key": sort_key(row["started_at"]),
                    "ended_key": sort_key(row["ended_at"]),
                    "deleted": int(row["deleted"]),
                    "doc": dump(doc),
                }
                cursor.execute(
                    f"INSERT INTO {EXECUTIONS.physical()} ({', '.join(names)}) "
                    f"VALUES ({', '.join('?' * len(names))})",
                    [values[name] for name in names],
                )
                cursor.execute(
                    f"INSERT INTO {VERSIONS.physical()} VALUES (?, 'Execution', ?)",
                    (execution_id, version),
                )
        assert not set(LINEAGE_COLUMNS) & set(db.columns(EXECUTIONS.physical()))
    finally:
        db.close()


def test_an_old_table_gets_the_columns_and_keeps_its_rows(
    store_url: str, history: tuple[Decider, Family]
) -> None:
    decider, f = history
    events = events_of(decider.store)
    old_tables(store_url, events, f.root, f.first)
    with ReadStore(store_url) as read:
        table = EXECUTIONS.physical()
        assert read.db.columns(table) == [
            *(name for name, _ in OLD_EXECUTIONS.columns),
            *LINEAGE_COLUMNS,  # ADD COLUMN appends
        ]
        assert {("parent_execution_id",), ("root_execution_id",)} <= read.db.indexed(table)
        assert read.schema_changes() == []
        # The old rows are there, NULL in the new columns: the first replay counts as
        # nobody's child yet.
        first = read.get_execution(f.first)
        assert first is not None and first["parent_execution_id"] == f.root
        assert "root_execution_id" not in first
        assert columns_of(read) == {f.root: (None, None), f.first: (None, None)}
        assert read.lineage(f.root) == {
            "execution_id": f.root,
            "root_execution_id": None,
            "parent_execution_id": None,
            "children": [],
            "children_total": 0,
        }
        # New rows fill the columns as they are written.
        later = [e for e in events if e.aggregate_id not in (f.root, f.first)]
        Projector(read).apply_batch(later)
        assert columns_of(read)[f.second] == (f.root, f.root)
        assert ids(read.list_executions(parent_execution_id=f.root)) == (1, [f.second])
        # A rebuild writes every row anew: the old ones get their columns too.
        rebuild(read, iter(events), fetch_events_from(decider.store))
        rebuilt = read.lineage(f.root)
        assert rebuilt is not None and rebuilt["children"] == [f.second, f.first]
        assert columns_of(read)[f.first] == (f.root, f.root)
        assert read.schema_changes() == []


def test_stores_opening_an_old_table_at_once_upgrade_it_once(
    store_url: str, history: tuple[Decider, Family]
) -> None:
    decider, f = history
    old_tables(store_url, events_of(decider.store), f.root)
    opened: list[ReadStore] = []
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def open_store() -> None:
        start.wait()
        try:
            opened.append(ReadStore(store_url))
        except BaseException as error:  # reported below, with the others
            failures.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        read = opened[0]
        assert read.db.columns(EXECUTIONS.physical()).count("root_execution_id") == 1
        assert read.schema_changes() == []
        assert read.get_execution(f.root) is not None
    finally:
        for store in opened:
            store.close()


def test_a_not_null_column_cannot_be_added_to_an_existing_table() -> None:
    declared = Table("t", (("id", "TEXT NOT NULL"), ("must", "TEXT NOT NULL")), ("id",))
    with pytest.raises(ValueError, match=r"read_t\.must is NOT NULL"):
        declared.upgrade_statements("", ["id"], [("id",)])
    assert Table(
        "t", (("id", "TEXT NOT NULL"), ("may", "TEXT")), ("id",), (("may",),)
    ).upgrade_statements("", ["id"], []) == [
        "ALTER TABLE read_t ADD COLUMN may TEXT",
        "CREATE INDEX IF NOT EXISTS ix_read_t_may ON read_t (may)",
    ]
