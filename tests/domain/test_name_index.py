"""NameIndex: the name -> current pipeline pointer behind delete-then-create and rename."""

from __future__ import annotations

from uuid import NAMESPACE_URL, uuid4, uuid5

from domain.name_index import NAME_INDEX_NAMESPACE, NameIndex, name_index_id
from domain.pipeline import Pipeline
from tests.domain.pipeline_builders import body, new_pipeline, now, refused, state_of


def test_index_id_derives_from_the_name_only() -> None:
    assert name_index_id("orders") == name_index_id("orders")
    assert name_index_id("orders") != name_index_id("Orders")
    assert name_index_id("orders") == uuid5(NAME_INDEX_NAMESPACE, "orders")
    assert name_index_id("orders") != uuid5(NAMESPACE_URL, "orders")
    index = NameIndex(name="orders", pipeline_id=uuid4(), at=now())
    assert index.id == name_index_id("orders")


def test_claiming_a_live_name_is_a_duplicate() -> None:
    holder, other = uuid4(), uuid4()
    index = NameIndex(name="orders", pipeline_id=holder, at=now())
    index.collect_events()
    e = refused(index, lambda: index.claim(other, at=now()))
    assert body(e) == (409, "DuplicateName", "An entity with this name already exists", None)
    index.claim(holder, at=now())  # the holder claiming again changes nothing
    assert index.collect_events() == []


def test_delete_then_create_gives_a_new_pipeline_with_fresh_history() -> None:
    first = new_pipeline("orders")
    index = NameIndex(name="orders", pipeline_id=first.id, at=now())
    first.delete(at=now())
    index.release(first.id, at=now())
    assert index.holder is None

    second = new_pipeline("orders")
    index.claim(second.id, at=now())
    assert index.pipeline_id == second.id != first.id
    assert second.version == 2 and second.refresh_version == 2  # Created + ProgramValidated
    assert second.id.version == 7


def test_rename_moves_the_index() -> None:
    p: Pipeline = new_pipeline("old")
    old = NameIndex(name="old", pipeline_id=p.id, at=now())
    new = NameIndex(name="new", pipeline_id=p.id, at=now())  # claim first: may be taken
    p.update(name="new", at=now())
    old.release(p.id, at=now())
    assert (p.name, new.pipeline_id, old.pipeline_id) == ("new", p.id, None)
    # The released name is free for another pipeline.
    other = uuid4()
    old.claim(other, at=now())
    assert old.pipeline_id == other


def test_only_the_holder_may_release() -> None:
    holder, stranger = uuid4(), uuid4()
    index = NameIndex(name="orders", pipeline_id=holder, at=now())
    e = refused(index, lambda: index.release(stranger, at=now()))
    assert (e.http_status, e.error_code) == (409, "NameHeldByAnotherPipeline")
    assert e.details == {
        "pipeline_name": "orders",
        "pipeline_id": str(stranger),
        "holder_id": str(holder),
    }
    index.release(holder, at=now())
    index.collect_events()
    index.release(holder, at=now())  # releasing a free name is a no-op
    assert index.collect_events() == []


def test_index_replays_from_serialized_events() -> None:
    index = NameIndex(name="orders", pipeline_id=uuid4(), at=now())
    index.release(index.pipeline_id, at=now())
    index.claim(uuid4(), at=now())
    rebuilt = None
    for e in index.collect_events():
        rebuilt = type(e).model_validate_json(e.model_dump_json()).mutate(rebuilt)
    assert rebuilt is not None
    assert state_of(rebuilt) == state_of(index)
