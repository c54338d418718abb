"""The projector: applies batches of LifecycleEvents to the read models, one transaction
per batch, recording (aggregate id, version) in that same transaction.

Per aggregate: a version at or below the applied one is skipped (a redelivery); the next
version is applied; a later one means events are missing (a lost or reordered delivery),
so the history after the applied version is fetched through `fetch_events` (the services
wire it to the event store) and applied first. A gap that cannot be healed fails the
batch: nothing of it is committed, and the caller retries it.

Only Pipeline, Config and Execution have read models; events of other aggregates (the
name, tag and run-number indexes) are ignored. An event type a read model does not know
is logged and its version recorded, so one unknown event cannot stall every later one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from contracts.events import LifecycleEvent
from projections import configs, executions, pipelines
from projections.read_tx import ReadTx
from projections.rows import Row, UnknownEvent
from projections.store import ReadStore

log = logging.getLogger(__name__)

Apply = Callable[[LifecycleEvent, Row | None], Row]
# (aggregate id, applied version) -> that aggregate's events after the version, in order.
FetchEvents = Callable[[str, int], Sequence[LifecycleEvent]]

APPLIERS: Final[dict[str, Apply]] = {
    "Pipeline": pipelines.apply,
    "Config": configs.apply,
    "Execution": executions.apply,
}


class GapNotHealed(RuntimeError):
    def __init__(self, aggregate_id: str, applied: int, wanted: int, reason: str) -> None:
        self.aggregate_id, self.applied, self.wanted = aggregate_id, applied, wanted
        super().__init__(
            f"Events {applied + 1}..{wanted} of {aggregate_id} are missing and could not "
            f"be fetched: {reason}"
        )


@dataclass
class BatchStats:
    applied: int = 0
    skipped: int = 0  # already applied (redelivered or older)
    healed: int = 0  # applied from fetch_events to close a gap
    ignored: int = 0  # aggregates without a read model
    unknown: int = 0  # event types without a step (logged, version recorded)

    def add(self, other: BatchStats) -> None:
        for field in ("applied", "skipped", "healed", "ignored", "unknown"):
            setattr(self, field, getattr(self, field) + getattr(other, field))


class _Batch:
    """One transaction's worth, folded in memory: the versions and rows of every aggregate
    the batch touches are read with one query per table, the events applied to them in
    order, and the rows and versions written back with one statement per table."""

    def __init__(self, tx: ReadTx, fetch_events: FetchEvents | None) -> None:
        self.tx = tx
        self.fetch_events = fetch_events
        self.rows: dict[str, tuple[str, Row]] = {}  # the rows changed, to write
        self.versions: dict[str, tuple[str, int]] = {}  # the versions applied, to record
        self.stats = BatchStats()
        self._known: dict[str, int] = {}  # versions stored before the batch
        self._stored: dict[str, Row] = {}  # rows stored before the batch (none: new)

    def run(self, events: Sequence[LifecycleEvent]) -> BatchStats:
        modelled = [e for e in events if e.aggregate_type in APPLIERS]
        self.stats.ignored += len(events) - len(modelled)
        self._known = self.tx.versions(e.aggregate_id for e in modelled)
        # Only an aggregate with an event to apply needs its row (a gap is healed on
        # the row of the event that shows it).
        self._load(e for e in modelled if e.version > self._known.get(e.aggregate_id, 0))
        for event in modelled:
            self.offer(event)
        by_type: dict[str, list[Row]] = {}
        for aggregate_type, row in self.rows.values():
            by_type.setdefault(aggregate_type, []).append(row)
        for aggregate_type, rows in by_type.items():
            self.tx.save_many(aggregate_type, rows)
        self.tx.set_versions(self.versions)
        return self.stats

    def _load(self, pending: Iterable[LifecycleEvent]) -> None:
        """Read the stored rows of `pending`'s aggregates, one query per table (a new
        aggregate has none; one query says so for all of them)."""
        ids: dict[str, dict[str, None]] = {}
        for event in pending:
            ids.setdefault(event.aggregate_type, {})[event.aggregate_id] = None
        for aggregate_type, wanted in ids.items():
            self._stored.update(self.tx.load_many(aggregate_type, wanted))

    def version(self, aggregate_id: str) -> int:
        if aggregate_id in self.versions:
            return self.versions[aggregate_id][1]
        return self._known.get(aggregate_id, 0)

    def offer(self, event: LifecycleEvent) -> None:
        applied = self.version(event.aggregate_id)
        if event.version <= applied:
            self.stats.skipped += 1
            return
        if event.version > applied + 1:
            self.heal(event.aggregate_id, applied, event.version)
            return
        self.apply(event)
        self.stats.applied += 1

    def heal(self, aggregate_id: str, applied: int, wanted: int) -> None:
        if self.fetch_events is None:
            raise GapNotHealed(aggregate_id, applied, wanted, "no event source")
        log.warning("Events %s..%s of %s missing; fetching", applied + 1, wanted - 1, aggregate_id)
        for event in self.fetch_events(aggregate_id, applied):
            if event.version <= applied:
                continue
            if event.version != applied + 1:
                raise GapNotHealed(aggregate_id, applied, wanted, f"got v{event.version}")
            self.apply(event)
            self.stats.healed += 1
            applied = event.version
        if applied < wanted:
            raise GapNotHealed(aggregate_id, applied, wanted, "the event store ends earlier")

    def apply(self, event: LifecycleEvent) -> None:
        aggregate_id, aggregate_type = event.aggregate_id, event.aggregate_type
        if aggregate_id in self.rows:
            current: Row | None = self.rows[aggregate_id][1]
        else:
            current = self._stored.get(aggregate_id)
        try:
            row = APPLIERS[aggregate_type](event, current)
        except UnknownEvent as error:
            log.error("%s; its version is recorded and the event left out", error)
            self.stats.unknown += 1
        else:
            self.rows[aggregate_id] = (aggregate_type, row)
        self.versions[aggregate_id] = (aggregate_type, event.version)


def apply_events(
    tx: ReadTx, events: Iterable[LifecycleEvent], fetch_events: FetchEvents | None = None
) -> BatchStats:
    """Apply `events` inside `tx` (see the module docstring)."""
    return _Batch(tx, fetch_events).run(list(events))


class Projector:
    """Usage: `Projector(store, fetch_events).apply_batch(events)` (synchronous: call it
    off the event loop)."""

    def __init__(
        self, store: ReadStore, fetch_events: FetchEvents | None = None, *, suffix: str = ""
    ) -> None:
        self.store = store
        self.fetch_events = fetch_events
        self.suffix = suffix

    def apply_batch(self, events: Iterable[LifecycleEvent]) -> BatchStats:
        with self.store.transaction(self.suffix) as tx:
            return apply_events(tx, events, self.fetch_events)
