"""The event store: the eventsourcing library's Application wired to SQLite or PostgreSQL by URL.

Events are pydantic models (domain.base), so they are mapped with pydantic and orjson rather
than the library's `__dict__` copying. The library is synchronous: async callers go through
`asyncio.to_thread`.

Every successful save is signalled to this process's commit listeners
(services.adapters.commit_signals, key `commit_key`) once its transaction has committed: a
relay in the same process then publishes at once instead of at its next poll.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, cast
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import orjson
import psycopg
from eventsourcing.application import Application, ProcessingEvent, ProjectorFunction, Repository
from eventsourcing.domain import BaseAggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import (
    IntegrityError,
    Mapper,
    MapperDeserialisationError,
    OperationalError,
    Recording,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import Environment, EnvType, get_topic, resolve_topic
from psycopg import sql
from pydantic import BaseModel

from projections.db import SCHEMA_LOCK_KEY
from services.adapters import commit_signals

DEFAULT_LOCK_TIMEOUT_S = 5
DEFAULT_CONNECT_TIMEOUT_S = 10

SnapshottingIntervals = Mapping[type[MutableOrImmutableAggregate[UUID]], int]


class ConcurrencyConflict(Exception):
    """Another writer stored one of these aggregates first: reload and decide again.

    `conflicts` holds (aggregate id, first version this save tried to write) for each
    aggregate whose stored history already reached that version.
    """

    def __init__(self, conflicts: Sequence[tuple[UUID, int]]) -> None:
        self.conflicts = tuple(conflicts)
        listed = ", ".join(f"aggregate {aid} at version {version}" for aid, version in conflicts)
        super().__init__(f"Concurrency conflict: another writer already stored {listed}")


class OrjsonTranscoder(Transcoder):
    """JSON bytes via orjson; values are already JSON-ready (the mapper dumps in json mode)."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


# Kept in the stored event's own columns, not in its state.
_POSITION: Final[set[str]] = {"originator_id", "originator_version"}


class PydanticMapper(Mapper[UUID]):
    """Maps pydantic events to stored events and back, validating on the way in.

    Upcasting follows the library's convention, which works with pydantic events: an event
    class declares `class_version: ClassVar[int] = N` and static methods
    `upcast_v1_v2(state: dict) -> None`, ...; stored state carries `class_version` when > 1.
    """

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if not isinstance(domain_event, BaseModel):
            raise TypeError(f"{type(domain_event).__qualname__} is not a pydantic event")
        state = domain_event.model_dump(mode="json", exclude=_POSITION)
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        # orjson (the transcoder) refuses integers past 64 bits, as every reader does.
        data = self.transcoder.encode(state)
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=data,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        data = stored_event.state
        try:
            if self.cipher:
                data = self.cipher.decrypt(data)
            if self.compressor:
                data = self.compressor.decompress(data)
            state: dict[str, Any] = self.transcoder.decode(data)
        except Exception as e:
            raise MapperDeserialisationError(
                f"Cannot decode stored event {stored_event.topic!r} of aggregate "
                f"{stored_event.originator_id} version {stored_event.originator_version}: {e}"
            ) from e
        from_version = state.pop("class_version", 1)
        class_version = getattr(cls, "class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        return cast(DomainEventProtocol[UUID], cls.model_validate(state))


def replay(
    aggregate: Any, domain_events: Iterable[DomainEventProtocol[UUID]]
) -> MutableOrImmutableAggregate[UUID] | None:
    """The library's `project_aggregate` without its `assert isinstance(event,
    CanMutateProtocol)`: every stored event is a `CanMutateAggregate`, and on Python 3.11
    that check walks the Protocol's attributes per event, costing more than the decode
    and the mutation together (benchmarks/load_bench.py)."""
    for domain_event in domain_events:
        aggregate = cast(Any, domain_event).mutate(aggregate)
    return cast(MutableOrImmutableAggregate[UUID] | None, aggregate)


class _ReplayingRepository(Repository[UUID]):
    """The library's repository, loading with `replay` unless told otherwise."""

    def get(
        self,
        aggregate_id: UUID,
        *,
        projector_func: ProjectorFunction[Any, Any] = replay,
        **kwargs: Any,
    ) -> Any:
        return super().get(aggregate_id, projector_func=projector_func, **kwargs)


class EventStore(Application[UUID]):
    """The application object that holds the event store, snapshots and notification log.

    Snapshot intervals come from the caller (keyed by aggregate class) so this module does
    not import domain aggregates. Subclasses keep the tables (and `env`, when they extend
    `{**EventStore.env, ...}`) and may extend `_record`/recorders (e.g. to write
    processed-command records in the event transaction via `save(..., **kwargs)`).
    """

    name = "EventStore"
    env: ClassVar[dict[str, str]] = {
        "MAPPER_TOPIC": get_topic(PydanticMapper),
        "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
        # A snapshot table always exists, so adding an interval later needs no migration.
        "IS_SNAPSHOTTING_ENABLED": "y",
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        named = "name" in cls.__dict__
        super().__init_subclass__(**kwargs)
        if not named:
            # PostgreSQL table names derive from the name: subclasses share the same tables.
            cls.name = EventStore.name

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        snapshotting_intervals: SnapshottingIntervals | None = None,
    ) -> None:
        # The library reads intervals from the instance; keeping them per store lets the
        # caller choose them without a subclass per set of aggregates.
        self.__dict__["snapshotting_intervals"] = dict(snapshotting_intervals or {})
        super().__init__(env)
        # Which database this store commits to, for the commit listeners of this process.
        self.commit_key = commit_signals.env_key(self.env)

    def construct_repository(self) -> Repository[UUID]:
        # The library's, settings and cache included (it reads them from the env).
        library = super().construct_repository()
        repository = _ReplayingRepository(
            event_store=library.event_store,
            snapshot_store=library.snapshot_store,
            fastforward=library.fastforward,
            fastforward_skipping=library.fastforward_skipping,
            deepcopy_from_cache=library.deepcopy_from_cache,
        )
        repository.cache = library.cache
        return repository

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        # Persistence is chosen by the URL (services.settings reads the environment), never
        # by whatever PERSISTENCE_MODULE etc. happen to be set in this process.
        return Environment(name, {**type(self).env, **(env or {})})

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """The library's `save`, collecting aggregates without its two runtime-protocol
        checks per object (typing's isinstance on a Protocol costs more than deciding a
        command); anything but an aggregate is collected the library's way, in order."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            else:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # the library's deprecated hook, still called
        return recordings

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot every aggregate of this save whose history crossed a multiple of its
        interval, as it is now in memory, all in one transaction. The library reloads each
        from the database at that exact version and stores it in a transaction of its
        own: with a pipeline snapshotted every few events that was half the write path.
        The aggregate in memory is what the cache hands the next command, so it is the
        state a reload would give; a snapshot at a later version than the multiple is as
        good (loading starts from the newest one)."""
        if self.snapshots is None or not self.snapshotting_intervals:
            return
        first: dict[UUID, int] = {}
        for event in processing_event.events:
            first.setdefault(event.originator_id, event.originator_version)
        snapshots = []
        for aggregate_id, version in first.items():
            aggregate = processing_event.aggregates.get(aggregate_id)
            if aggregate is None:
                continue
            interval = self.snapshotting_intervals.get(type(aggregate))
            if not interval or (version - 1) // interval == aggregate.version // interval:
                continue
            snapshot_class = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
            if snapshot_class is not None:
                snapshots.append(snapshot_class.take(aggregate))
        if snapshots:
            self.snapshots.put(snapshots)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        try:
            recordings = super()._record(processing_event)
        except IntegrityError as e:
            conflicts = self._find_conflicts(processing_event.events)
            if not conflicts:
                raise
            raise ConcurrencyConflict(conflicts) from e
        # The recorder's transaction has committed: whoever reads the notification log in
        # this process may read it now.
        if processing_event.events:
            commit_signals.committed(self.commit_key)
        return recordings

    def _find_conflicts(
        self, events: Sequence[DomainEventProtocol[UUID]]
    ) -> list[tuple[UUID, int]]:
        first_new: dict[UUID, int] = {}
        for event in events:
            version = first_new.get(event.originator_id)
            if version is None or event.originator_version < version:
                first_new[event.originator_id] = event.originator_version
        conflicts = []
        for aggregate_id, version in first_new.items():
            latest = self.recorder.select_events(aggregate_id, desc=True, limit=1)
            if latest and latest[0].originator_version >= version:
                conflicts.append((aggregate_id, version))
        return conflicts


def open_event_store(
    url: str,
    *,
    snapshotting_intervals: SnapshottingIntervals | None = None,
    lock_timeout_s: int = DEFAULT_LOCK_TIMEOUT_S,
    schema: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    store_class: type[EventStore] = EventStore,
) -> EventStore:
    """Open the event store at `url`: `sqlite:///relative.db`, `sqlite:////abs.db`,
    `sqlite:///:memory:` or `postgresql://user[:password]@host[:port]/db`.

    `lock_timeout_s` bounds each wait for the PostgreSQL events-table lock (the SQLite busy
    timeout on SQLite); the library retries a PostgreSQL OperationalError 10 times, 0.2 s
    apart, so a blocked writer gives up after about 10 x (lock_timeout_s + 0.2) s.

    A PostgreSQL schema may be given as `schema` or in the URL the libpq way
    (`?options=-csearch_path%3Dname`); it is created if missing. `extra_env` passes further
    library settings (e.g. AGGREGATE_CACHE_MAXSIZE, APPLICATION_RECORDER_TOPIC).
    """
    env = event_store_env(url, lock_timeout_s=lock_timeout_s, schema=schema)
    env.update(extra_env or {})
    if "POSTGRES_DBNAME" not in env:
        return _open_sqlite(store_class, env, snapshotting_intervals)
    # The library creates its tables and functions on every open (CREATE OR REPLACE
    # FUNCTION included), and two processes doing that at once fail with "tuple
    # concurrently updated": roles opening one database together take turns, with each
    # other and with every other table creation (projections.db.Database.create_tables).
    with _connect(env) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        if env.get("POSTGRES_SCHEMA"):
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(env["POSTGRES_SCHEMA"])
                )
            )
        return store_class(env, snapshotting_intervals=snapshotting_intervals)


SQLITE_OPEN_ATTEMPTS = 5


def _open_sqlite(
    store_class: type[EventStore],
    env: dict[str, str],
    snapshotting_intervals: SnapshottingIntervals | None,
) -> EventStore:
    # Roles opening one fresh SQLite file together (`pipelines dev`, the benchmarks) may
    # find it write-locked by another's table creation for longer than the busy timeout.
    # Creating is idempotent, so the store is opened again (a new one: the library's
    # connection pool does not recover from a failed creation).
    for attempt in range(1, SQLITE_OPEN_ATTEMPTS + 1):
        try:
            return store_class(env, snapshotting_intervals=snapshotting_intervals)
        except (OperationalError, sqlite3.OperationalError) as error:
            if "locked" not in str(error) or attempt == SQLITE_OPEN_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def event_store_env(
    url: str, *, lock_timeout_s: int = DEFAULT_LOCK_TIMEOUT_S, schema: str | None = None
) -> dict[str, str]:
    """The library's environment for `url` (see `open_event_store`)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise ValueError(f"No SQLite path in event store URL {url!r}")
        if ":memory:" not in path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": str(lock_timeout_s),
        }
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"Unsupported event store URL {url!r}: use sqlite:/// or postgresql://")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or not parts.hostname or not parts.username:
        raise ValueError(f"PostgreSQL URL {url!r} needs a user, a host and a database name")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": str(DEFAULT_CONNECT_TIMEOUT_S),
        # A writer blocked on the events table lock fails instead of waiting forever.
        "POSTGRES_LOCK_TIMEOUT": str(lock_timeout_s),
        # DB functions bypass the recorder hook that writes command records atomically.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
    }
    schema = schema or _search_path_schema(parts.query)
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    return env


def _search_path_schema(query: str) -> str | None:
    """The first schema of a libpq `options=-c search_path=...` parameter, if any."""
    for options in parse_qs(query).get("options", []):
        for option in options.split():
            setting = option.removeprefix("-c")
            if setting.startswith("search_path="):
                first = setting.removeprefix("search_path=").split(",")[0].strip()
                return first.strip('"') or None
    return None


def _connect(env: Mapping[str, str]) -> psycopg.Connection[Any]:
    """A connection of its own; closing it releases its session's advisory locks."""
    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
        connect_timeout=DEFAULT_CONNECT_TIMEOUT_S,
        autocommit=True,
    )
