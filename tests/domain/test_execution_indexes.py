"""What an Execution is created with: a unique tag (TagIndex), a run number per owner
(RunCounter) and the deep-merged init payload (payload_merge)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid4, uuid5

import pytest
from uuid6 import uuid7

from domain.errors import DomainError
from domain.payload_merge import deep_merge
from domain.run_counter import RUN_COUNTER_NAMESPACE, RunCounter, run_counter_id
from domain.tag_index import TAG_INDEX_NAMESPACE, TagIndex, tag_index_id

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# --- TagIndex -----------------------------------------------------------------------------


def test_tag_index_id_derives_from_the_tag_only() -> None:
    assert tag_index_id("nightly") == uuid5(TAG_INDEX_NAMESPACE, "nightly")
    assert tag_index_id("nightly") != tag_index_id("Nightly")
    assert tag_index_id("nightly") != uuid5(NAMESPACE_URL, "nightly")
    index = TagIndex(tag="nightly", execution_id=uuid7(), at=T0)
    assert index.id == tag_index_id("nightly")


def test_a_tag_held_by_another_execution_is_a_duplicate() -> None:
    holder, other = uuid7(), uuid7()
    index = TagIndex(tag="nightly", execution_id=holder, at=T0)
    index.collect_events()
    with pytest.raises(DomainError) as caught:
        index.claim(other, at=T0)
    e = caught.value
    assert (e.http_status, e.error_code, e.message, e.details) == (
        409,
        "DuplicateTag",
        f"Tag 'nightly' is already used by execution {holder}",
        {"tag": "nightly", "execution_id": str(holder)},
    )
    assert index.pending_events == [] and index.execution_id == holder
    index.claim(holder, at=T0)  # the holder claiming again changes nothing
    assert index.collect_events() == []


def test_a_released_tag_can_be_claimed_again_but_only_the_holder_releases() -> None:
    holder, stranger = uuid7(), uuid7()
    index = TagIndex(tag="t", execution_id=holder, at=T0)
    with pytest.raises(DomainError) as caught:
        index.release(stranger, at=T0)
    assert caught.value.error_code == "TagHeldByAnotherExecution"
    index.release(holder, at=T0)
    assert index.holder is None
    index.release(holder, at=T0)  # releasing a free tag is a no-op
    index.claim(stranger, at=T0)
    assert index.execution_id == stranger
    assert [type(e).__name__ for e in index.collect_events()] == [
        "Claimed",
        "Released",
        "Reclaimed",
    ]


# --- RunCounter ---------------------------------------------------------------------------


def test_run_numbers_count_from_one_per_owner() -> None:
    pipeline, config = uuid4(), uuid4()
    first = RunCounter(owner_id=pipeline, at=T0)
    second = RunCounter(owner_id=config, at=T0)
    assert [first.next_run_number(at=T0) for _ in range(3)] == [1, 2, 3]
    assert second.next_run_number(at=T0) == 1
    assert (first.last_run_number, second.last_run_number) == (3, 1)


def test_run_counter_id_derives_from_the_owner() -> None:
    owner = uuid4()
    assert run_counter_id(owner) == uuid5(RUN_COUNTER_NAMESPACE, f"runs:{owner}")
    assert run_counter_id(owner) != run_counter_id(uuid4())
    assert RunCounter(owner_id=owner, at=T0).id == run_counter_id(owner)


def test_run_numbers_survive_replay() -> None:
    counter = RunCounter(owner_id=uuid4(), at=T0)
    counter.next_run_number(at=T0)
    counter.next_run_number(at=T0)
    rebuilt: RunCounter | None = None
    e: Any
    for e in counter.collect_events():
        rebuilt = type(e).model_validate_json(e.model_dump_json()).mutate(rebuilt)
    assert rebuilt is not None
    assert rebuilt.next_run_number(at=T0) == 3


# --- deep_merge ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "override", "merged"),
    [
        ({}, {}, {}),
        ({"a": 1}, {}, {"a": 1}),
        ({}, {"a": 1}, {"a": 1}),
        ({"a": 1, "b": 2}, {"b": 3}, {"a": 1, "b": 3}),
        # dicts merge recursively, at any depth
        (
            {"s": {"x": 1, "y": {"p": 1}}},
            {"s": {"y": {"q": 2}}},
            {"s": {"x": 1, "y": {"p": 1, "q": 2}}},
        ),
        # lists replace, never concatenate
        ({"l": [1, 2, 3]}, {"l": [9]}, {"l": [9]}),
        # scalars replace dicts and dicts replace scalars
        ({"a": {"x": 1}}, {"a": 5}, {"a": 5}),
        ({"a": 5}, {"a": {"x": 1}}, {"a": {"x": 1}}),
        # null sets null; it does not delete
        ({"a": 1, "b": {"c": 2}}, {"a": None, "b": None}, {"a": None, "b": None}),
        ({"a": {"x": 1}}, {"a": {}}, {"a": {"x": 1}}),
    ],
)
def test_deep_merge(base: dict[str, Any], override: dict[str, Any], merged: dict[str, Any]) -> None:
    assert deep_merge(base, override) == merged


def test_deep_merge_leaves_its_inputs_alone_and_shares_nothing() -> None:
    base: dict[str, Any] = {"s": {"x": [1]}, "k": [1]}
    override: dict[str, Any] = {"s": {"y": [2]}}
    merged = deep_merge(base, override)
    assert base == {"s": {"x": [1]}, "k": [1]} and override == {"s": {"y": [2]}}
    merged["s"]["x"].append(99)
    merged["s"]["y"].append(99)
    merged["k"].append(99)
    assert base == {"s": {"x": [1]}, "k": [1]} and override == {"s": {"y": [2]}}
