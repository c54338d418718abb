"""The read-model queries on SQLite and PostgreSQL: every filter and every seed 003
ordering of `list_executions`, paging, and unknown orderings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from projections.projector import Projector
from projections.store import ORDERINGS, ReadStore, UnknownOrdering
from tests.projections.support import Story, driven, events_of

SEED_003_ORDERINGS = [
    "run_number", "-run_number", "status", "-status", "pipeline__name", "-pipeline__name",
    "started_at", "-started_at", "ended_at", "-ended_at",
]  # fmt: skip


@pytest.fixture
def projected(store_url: str) -> Iterator[tuple[ReadStore, Story]]:
    with driven(store_url) as (decider, story), ReadStore(store_url) as read:
        Projector(read).apply_batch(events_of(decider.store))
        yield read, story


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["id"] for row in rows]


def _expected_order(rows: list[dict[str, Any]], ordering: str) -> list[str]:
    """Missing values last ascending and first descending; ties by id."""
    field = ordering.removeprefix("-")
    field = "pipeline_name" if field == "pipeline__name" else field
    descending = ordering.startswith("-")
    present = [r for r in rows if r[field] is not None]
    missing = sorted((r for r in rows if r[field] is None), key=lambda r: r["id"])
    # Stable sorts: by id first, then by the field (timestamps are ISO text in UTC).
    by_id = sorted(present, key=lambda r: r["id"])
    ordered = sorted(by_id, key=lambda r: r[field], reverse=descending)
    if descending:  # reverse=True keeps ties in their order, which is ascending by id
        return _ids(missing + ordered)
    return _ids(ordered + missing)


def test_every_seed_ordering(projected: tuple[ReadStore, Story]) -> None:
    read, story = projected
    count, everything = read.list_executions()
    assert count == len(story.executions) - 1  # one run was deleted
    assert set(_ids(everything)) == {str(e) for e in story.executions} - {str(story.executions[3])}
    assert set(SEED_003_ORDERINGS) <= {s + k for k in ORDERINGS for s in ("", "-")}
    for ordering in SEED_003_ORDERINGS:
        _, rows = read.list_executions(ordering=ordering)
        assert _ids(rows) == _expected_order(everything, ordering), ordering
    # Fields that differ across the rows, so each ordering really is tested.
    for field in ("run_number", "status", "pipeline_name", "started_at", "ended_at"):
        values = {row[field] for row in everything}
        assert None in values or field in ("run_number", "status"), field
        assert len(values - {None}) >= 2, field


def test_default_ordering_is_newest_first(projected: tuple[ReadStore, Story]) -> None:
    read, story = projected
    _, rows = read.list_executions()
    live = [str(e) for e in story.executions if e != story.executions[3]]
    assert _ids(rows) == list(reversed(live))


def test_filters(projected: tuple[ReadStore, Story]) -> None:
    read, story = projected
    runs, config_runs = story.executions[:3], story.executions[4:]
    alpha = str(story.pipelines[0])

    count, rows = read.list_executions(pipeline_name="alpha", ordering="run_number")
    assert count == 2 and _ids(rows) == [str(runs[0]), str(runs[1])]
    assert [r["run_number"] for r in rows] == [1, 2]
    assert read.list_executions(pipeline_id=alpha, ordering="run_number")[1] == rows
    assert read.list_executions(pipeline_name="nope") == (0, [])

    count, rows = read.list_executions(status="QUEUED")
    assert count == 1 and _ids(rows) == [str(runs[1])]
    assert read.list_executions(status="queued")[1] == rows

    # beta's run carries beta's config too
    count, rows = read.list_executions(config_id=str(story.configs[1]), ordering="created_at")
    assert count == 2 and _ids(rows) == [str(runs[2]), str(config_runs[1])]
    count, rows = read.list_executions(config_id=str(story.configs[1]), owner_kind="config")
    assert count == 1 and rows[0]["id"] == str(config_runs[1])
    assert rows[0]["tag"] == "t2" and rows[0]["pipeline_name"] is None

    assert _ids(read.list_executions(tag="t1")[1]) == [str(config_runs[0])]
    assert read.list_executions(owner_kind="config")[0] == 3
    completed = read.list_executions(execution_status="completed")[1]
    assert _ids(completed) == [str(config_runs[0]), str(runs[0])]  # newest first


def test_paging_counts_before_the_page(projected: tuple[ReadStore, Story]) -> None:
    read, _ = projected
    count, everything = read.list_executions(ordering="-run_number")
    pages = [
        read.list_executions(ordering="-run_number", limit=2, offset=offset)
        for offset in range(0, count + 2, 2)
    ]
    assert all(page_count == count for page_count, _ in pages)
    assert [row for _, page in pages for row in page] == everything
    assert read.list_executions(limit=0) == (count, [])


def test_unknown_ordering_is_refused(projected: tuple[ReadStore, Story]) -> None:
    read, _ = projected
    with pytest.raises(UnknownOrdering):
        read.list_executions(ordering="name; DROP TABLE read_executions")
