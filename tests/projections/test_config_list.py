"""The configs read model's list, on SQLite and PostgreSQL: configs made through the real
decider, newest first, paged, filtered by their exact name, with their description; and a
configs table created before it had its name and created-at columns gets them when a
store opens it: its rows survive with NULL there (listed last, found by no name) until a
rebuild fills them, new rows fill them at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from contracts import commands as cmd
from contracts.events import LifecycleEvent
from projections import configs
from projections.db import Database
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.rows import Row, dump
from projections.schema import CONFIGS, VERSIONS, Table
from projections.store import ReadStore
from services.runtimes.projector import fetch_events_from
from services.service_layer.decider import Decider
from tests.projections.support import events_of
from tests.service_layer.decider_support import (
    accepted,
    config_document,
    decide_one,
    opened_decider,
)

NEW_COLUMNS = ("name", "created_key", "deleted")
# The configs table as stores made it before it had the name, created-at and deleted columns.
OLD_CONFIGS = Table(CONFIGS.name, (("id", "TEXT NOT NULL"), ("doc", "TEXT NOT NULL")), ("id",))


def _id(decider: Decider, command: Any) -> str:
    found = accepted(decide_one(decider, command)).aggregate_id
    assert found is not None
    return found


@pytest.fixture
def made(store_url: str) -> Iterator[tuple[Decider, list[str]]]:
    """Configs a, b, a (renamed from c), in creation order; the first one described."""
    with opened_decider(store_url) as decider:
        ids = [
            _id(decider, cmd.CreateConfig(name="a", document=config_document(), description="d")),
            _id(decider, cmd.CreateConfig(name="b", document=config_document())),
            _id(decider, cmd.CreateConfig(name="c", document=config_document())),
        ]
        decide_one(
            decider, cmd.UpdateConfig(config_id=UUID(ids[2]), document=config_document(), name="a")
        )
        yield decider, ids


def ids(found: tuple[int, list[Row]]) -> tuple[int, list[str]]:
    return found[0], [row["id"] for row in found[1]]


def test_the_list_is_newest_first_paged_and_filtered_by_name(
    made: tuple[Decider, list[str]], read_store: ReadStore
) -> None:
    decider, (first, second, third) = made
    Projector(read_store).apply_batch(events_of(decider.store))
    assert ids(read_store.list_configs()) == (3, [third, second, first])
    assert ids(read_store.list_configs(name="a")) == (2, [third, first])
    assert ids(read_store.list_configs(name="c")) == (0, [])  # renamed away
    assert ids(read_store.list_configs(name="A")) == (0, [])
    assert ids(read_store.list_configs(limit=1, offset=1)) == (3, [second])
    assert ids(read_store.list_configs(name="a", offset=2)) == (2, [])
    rows = read_store.list_configs()[1]
    assert rows == [read_store.get_config(i) for i in (third, second, first)]
    assert [row["description"] for row in rows] == [None, None, "d"]


def test_an_update_keeps_the_description_unless_it_gives_one(
    made: tuple[Decider, list[str]], read_store: ReadStore
) -> None:
    decider, (first, *_) = made
    config = UUID(first)
    decide_one(decider, cmd.UpdateConfig(config_id=config, document=config_document()))
    Projector(read_store).apply_batch(events_of(decider.store))
    kept = read_store.get_config(first)
    assert kept is not None and (kept["description"], kept["version"]) == ("d", 2)
    decide_one(
        decider, cmd.UpdateConfig(config_id=config, document=config_document(), description="")
    )
    Projector(read_store).apply_batch(events_of(decider.store))
    cleared = read_store.get_config(first)
    assert cleared is not None and (cleared["description"], cleared["version"]) == ("", 3)


# --- a configs table from before the name and created-at columns ----------------------------------


def old_tables(url: str, events: list[LifecycleEvent], *config_ids: str) -> None:
    """The configs and versions tables as an older store left them, holding the rows of
    `config_ids` (their documents without the description and the deleted flag, which old
    rows never had)."""
    db = Database(url)
    try:
        db.create_tables([*OLD_CONFIGS.create_statements(), *VERSIONS.create_statements()])
        with db.transaction() as cursor:
            for config_id in config_ids:
                row: Row | None = None
                version = 0
                for event in events:
                    if event.aggregate_id == config_id:
                        row, version = configs.apply(event, row), event.version
                assert row is not None
                row.pop("description")
                row.pop("deleted")
                cursor.execute(
                    f"INSERT INTO {CONFIGS.physical()} (id, doc) VALUES (?, ?)",
                    (config_id, dump(row)),
                )
                cursor.execute(
                    f"INSERT INTO {VERSIONS.physical()} VALUES (?, 'Config', ?)",
                    (config_id, version),
                )
        assert not set(NEW_COLUMNS) & set(db.columns(CONFIGS.physical()))
    finally:
        db.close()


def test_an_old_table_gets_the_columns_and_keeps_its_rows(
    store_url: str, made: tuple[Decider, list[str]]
) -> None:
    decider, (first, second, third) = made
    events = events_of(decider.store)
    old_tables(store_url, events, first, second)
    with ReadStore(store_url) as read:
        table = CONFIGS.physical()
        assert read.db.columns(table) == ["id", "doc", *NEW_COLUMNS]  # ADD COLUMN appends
        assert {("name",), ("created_key",)} <= read.db.indexed(table)
        assert read.schema_changes() == []
        old = read.get_config(first)
        assert old is not None and old["name"] == "a" and "description" not in old
        # New rows fill the columns as they are written; the old ones come last, by id,
        # and no name finds them.
        Projector(read).apply_batch([e for e in events if e.aggregate_id == third])
        assert ids(read.list_configs()) == (3, [third, *sorted((first, second), reverse=True)])
        assert ids(read.list_configs(name="a")) == (1, [third])
        # A rebuild writes every row anew: the old ones get their columns too.
        rebuild(read, iter(events), fetch_events_from(decider.store))
        assert ids(read.list_configs()) == (3, [third, second, first])
        assert ids(read.list_configs(name="a")) == (2, [third, first])
        rebuilt = read.get_config(first)
        assert rebuilt is not None and rebuilt["description"] == "d"
        assert read.schema_changes() == []
