"""Generated command sequences through the whole command path, on a real SQLite event store:
bytes -> `decode_record` (the command handler's decoding) -> `Decider.decide` with the real
HANDLERS -> results; the stored events then go out as the relay publishes them and are
projected into the read models (which the decider reads back for DeleteConfig).

Every message must be answered with a CommandAccepted or a CommandRejected that is not
the decider's own "a handler raised" (InternalError: a bug answered, not a decision); a
repeated batch must get the very same bytes back; and the store must stay loadable: every
stored aggregate loads in a freshly opened store, and every event can be published and
projected. Bodies come from each model's JSON Schema with names and ids from small pools
(tests.fuzz.commands), so the commands of one example act on the same few aggregates.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError
from hypothesis import event, given
from hypothesis import strategies as st

from contracts import Command, CommandAccepted, CommandRejected
from contracts.cloudevents import decode_event, encode_event
from contracts.commands import (
    CreateConfig,
    CreatePipeline,
    RunConfig,
)
from contracts.events import LifecycleEvent
from domain.name_index import NameIndex, name_index_id
from projections.projector import Projector
from projections.store import ReadStore
from services.adapters.eventstore import EventStore
from services.adapters.stores import open_command_store
from services.runtimes.command_handler import decode_record
from services.runtimes.relay import to_lifecycle_event
from services.service_layer.decider import RETRY_LATER_STATUS, Decider, Item, Outcome
from services.service_layer.handlers import HANDLERS
from tests.domain.config_documents import FETCH_INIT, MAP_STEP, one_route_document
from tests.fuzz.commands import (
    CONFIG_IDS,
    CURRENT,
    EXECUTION_IDS,
    MODELS,
    PIPELINE_NAMES,
    pooled_bodies,
)
from tests.fuzz.envelopes import consumed, envelope, json_bytes
from tests.fuzz.profiles import scaled
from tests.service_layer.decider_support import Clock

Step = tuple[str, dict[str, Any]]  # a command type and its JSON body
Script = list[list[Step]]  # batches of steps

# What most scripts start with, so that later commands find a config, a pipeline on it
# and a running execution of it.
_PRELUDE: Final[list[Step]] = [
    (
        CreateConfig.command_type(),
        {
            "config_id": str(CONFIG_IDS[0]),
            "name": "c1",
            "document": one_route_document([MAP_STEP], init_message=FETCH_INIT),
        },
    ),
    (CreatePipeline.command_type(), {"name": PIPELINE_NAMES[0], "config_id": str(CONFIG_IDS[0])}),
    (
        RunConfig.command_type(),
        {"config_id": str(CONFIG_IDS[0]), "execution_id": str(EXECUTION_IDS[0])},
    ),
]


@st.composite
def steps(draw: st.DrawFn) -> Step:
    model: type[Command] = draw(st.sampled_from(MODELS))
    return model.command_type(), draw(pooled_bodies(model))


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    batches = draw(st.lists(st.lists(steps(), min_size=1, max_size=5), min_size=1, max_size=3))
    if draw(st.integers(0, 4)) > 0:
        batches.insert(0, list(_PRELUDE))
    return batches


class Run:
    """One example's store, decider and read models, in a directory of its own."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        self.url = f"sqlite:///{directory / 'events.db'}"
        self.store: EventStore = open_command_store(self.url)
        self.read = ReadStore(self.url)
        self.decider = Decider(self.store, HANDLERS, clock=Clock(), usage=self.read)
        self.projected = 0  # the notification id the read models are level with

    def close(self) -> None:
        self.read.close()
        self.store.close()

    def items(self, batch: list[Step]) -> list[Item]:
        """The batch as the command handler decodes it from the topic."""
        decoded = []
        for command_type, body in batch:
            headers = envelope(command_type, str(uuid4()))
            item, _ = decode_record(
                consumed(json_bytes(self.resolve(body)), headers), max_bytes=2**20
            )
            assert item is not None
            decoded.append(item)
        return decoded

    def resolve(self, body: dict[str, Any]) -> dict[str, Any]:
        """`CURRENT` filled in with what the store holds now (None when it holds nothing)."""
        resolved = dict(body)
        if resolved.get("pipeline_id") == CURRENT:
            found = self.pipeline_id(resolved["pipeline_name"])
            resolved["pipeline_id"] = str(found or uuid4())
        if resolved.get("expected_version") == CURRENT:
            aggregate_id = resolved.get("execution_id") or self.pipeline_id(
                resolved.get("pipeline_name", "")
            )
            resolved["expected_version"] = self.version(aggregate_id)
        return resolved

    def pipeline_id(self, name: str) -> UUID | None:
        try:
            index: NameIndex = self.store.repository.get(name_index_id(name))
        except AggregateNotFoundError:
            return None
        return index.pipeline_id

    def version(self, aggregate_id: UUID | str | None) -> int | None:
        if aggregate_id is None:
            return None
        try:
            return int(self.store.repository.get(UUID(str(aggregate_id))).version)
        except (AggregateNotFoundError, ValueError):
            return None

    def project(self) -> None:
        """The events stored since the last call, published and projected."""
        events = list(self.published(after=self.projected))
        Projector(self.read).apply_batch(events)

    def published(self, after: int) -> Iterator[LifecycleEvent]:
        for notification in self.store.recorder.select_notifications(
            start=after, limit=10_000, inclusive_of_start=False
        ):
            self.projected = notification.id
            lifecycle = to_lifecycle_event(notification)
            if lifecycle is not None:
                record = encode_event(lifecycle)
                yield decode_event(record.value, record.headers).event


def assert_answered(outcome: Outcome) -> None:
    result = outcome.result
    assert isinstance(result, CommandAccepted | CommandRejected)
    if isinstance(result, CommandRejected):
        event(f"rejected: {result.error_code}")  # --hypothesis-show-statistics
        assert result.error_code != "InternalError", result
    else:
        event(f"accepted: {result.command_type}")
    outcome.record()  # publishable


def assert_repeats_answered_from_records(first: list[Outcome], again: list[Outcome]) -> None:
    """The same messages again get the same bytes, but for a 503 ("not now", never
    recorded: decided afresh) and a wire rejection (a function of the bytes anyway)."""
    for before, after in zip(first, again, strict=True):
        if before.result.http_status == RETRY_LATER_STATUS:
            assert not after.repeated
        else:
            assert after.value == before.value


def assert_loadable(url: str) -> None:
    """Every stored aggregate loads in a store opened afresh (no cache, snapshots read)."""
    with open_command_store(url) as reopened:
        notifications = reopened.recorder.select_notifications(start=None, limit=100_000)
        for originator_id in {n.originator_id for n in notifications}:
            reopened.repository.get(originator_id)


@pytest.fixture(scope="module")
def directories(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz-decider")


@scaled(50)
@given(scripts())
def test_every_command_is_decided_and_the_store_stays_loadable(
    directories: Path, script: Script
) -> None:
    run = Run(Path(directories) / uuid4().hex)
    try:
        for batch in script:
            items = run.items(batch)
            outcomes = run.decider.decide(items)
            assert [o.command_id for o in outcomes] == [i.command_id for i in items]
            for outcome in outcomes:
                assert_answered(outcome)
            run.project()
            assert_repeats_answered_from_records(outcomes, run.decider.decide(items))
    finally:
        run.close()
    assert_loadable(run.url)
