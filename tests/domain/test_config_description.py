"""A Config's description: given at creation, kept or replaced by an update, recorded in
its events and snapshots; events and snapshots stored before configs had one read as no
description, through the event store's mapper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from eventsourcing.persistence import StoredEvent

from domain.config import Config, ConfigState
from services.adapters.eventstore import OrjsonTranscoder, PydanticMapper
from tests.domain.config_documents import FETCH_INIT, MAP_STEP, one_route_document

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MAPPER = PydanticMapper(transcoder=OrjsonTranscoder())
DOCUMENT = one_route_document([MAP_STEP], init_message=FETCH_INIT)


def replay(stored: list[StoredEvent]) -> Config:
    aggregate: Any = None
    for event in stored:
        domain_event: Any = MAPPER.to_domain_event(event)
        aggregate = domain_event.mutate(aggregate)
    assert isinstance(aggregate, Config)
    return aggregate


def without_description(stored: StoredEvent) -> StoredEvent:
    """The event as stores wrote it before configs had a description."""
    state = orjson.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["description"]  # what version 1 of the event stored
    return StoredEvent(
        stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(state)
    )


def test_an_update_keeps_the_description_unless_it_gives_one() -> None:
    config = Config.create("c", DOCUMENT, T0, description="first")
    config.update(DOCUMENT, T0 + timedelta(seconds=1))
    assert config.description == "first"
    config.update(DOCUMENT, T0 + timedelta(seconds=2), description="second")
    assert (config.description, config.config_version) == ("second", 3)
    stored = [MAPPER.to_stored_event(e) for e in config.collect_events()]
    assert [orjson.loads(s.state)["description"] for s in stored] == ["first", "first", "second"]
    assert replay(stored).description == "second"
    state = {k: v for k, v in vars(config).items() if k != "_pending_events"}
    assert ConfigState.model_validate(state).description == "second"


def test_events_and_snapshots_stored_before_descriptions_read_as_none() -> None:
    config = Config.create("c", DOCUMENT, T0)
    config.update(DOCUMENT, T0 + timedelta(seconds=1), name="d")
    stored = [without_description(MAPPER.to_stored_event(e)) for e in config.collect_events()]
    replayed = replay(stored)
    assert (replayed.name, replayed.description, replayed.config_version) == ("d", None, 2)
    old_snapshot = {
        k: v for k, v in vars(config).items() if k not in ("_pending_events", "description")
    }
    assert ConfigState.model_validate(old_snapshot).description is None
