"""The orchestrator role's parts, each on its own: the commands it derives (final stage
statuses, reports and decisions on the version the reports lead to), the ledger's
progress per route and its verdicts (SQLite and PostgreSQL), the cached execution lookup
on a real event store, version-scoped workers, and the examples the README runs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
import yaml

from contracts.orchestrator_commands import (
    DecideExecution,
    ExecutionDecision,
    ReportStageProgress,
    decision_command_id,
)
from contracts.statuses import RunStatus
from domain.execution import Execution
from domain.validation import validate_config
from services.adapters.stores import open_command_store
from services.runtimes.orchestrator.execution_info import ExecutionInfo
from services.runtimes.orchestrator.ledger import ExecutionProgress, Ledger, RouteProgress
from services.runtimes.orchestrator.route_batch import RouteScope
from services.runtimes.orchestrator.route_consumer import consumer_options, routes_group_id
from services.runtimes.orchestrator.route_worker import route_group_id
from services.runtimes.orchestrator.stage_reports import (
    ROLE,
    final_stage_status,
    finishing,
    progress_reports,
    report,
)
from services.runtimes.orchestrator.store_lookups import EventStoreReader, ExecutionInfos
from services.runtimes.routes.adapters import load_adapter_registry
from services.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ROUTES = ("a", "b", "c")
C, F = ExecutionDecision.COMPLETE, ExecutionDecision.FAIL


def execution(**changes: object) -> Execution:
    return Execution.for_config(
        execution_id=uuid.uuid4(),
        config_id=uuid.uuid4(),
        config_version=1,
        at=AT,
        route_ids=ROUTES,
        config_init_payload={"x": 1},
        init_route="a",
        init_topic="t.a",
        **changes,  # type: ignore[arg-type]
    )


def progress(
    drained: bool = True, failed: bool = False, **routes: RouteProgress
) -> ExecutionProgress:
    return ExecutionProgress(routes, drained=drained, failed=failed)


# --- what the role derives -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "counts", "status"),
    [
        (C, RouteProgress(3, 3, 0, 0), RunStatus.SUCCESS),
        (C, RouteProgress(0, 0, 0, 0), RunStatus.SUCCESS),  # nothing reached it: still done
        (F, RouteProgress(2, 1, 1, 0), RunStatus.FAILURE),  # it dead-lettered
        (F, RouteProgress(2, 2, 0, 0), RunStatus.SUCCESS),  # did all it was given
        (F, RouteProgress(2, 1, 0, 1), RunStatus.CANCELLED),  # work left
        (F, RouteProgress(0, 0, 0, 0), RunStatus.CANCELLED),  # never reached
    ],
)
def test_a_routes_final_status(
    chosen: ExecutionDecision, counts: RouteProgress, status: RunStatus
) -> None:
    assert final_stage_status(chosen, counts) is status


def test_finishing_reports_every_route_then_decides_on_the_version_they_lead_to() -> None:
    run = execution()
    run.start(now=AT)
    before = run.version
    found = progress(a=RouteProgress(1, 1, 0), b=RouteProgress(1, 1, 0), c=RouteProgress(1, 0, 0))
    sent = finishing(run, found, C, AT)

    reports = [o.command for o in sent[:-1]]
    assert all(isinstance(r, ReportStageProgress) for r in reports)
    assert [(r.route, r.messages_in, r.messages_out, r.finished) for r in reports] == [  # type: ignore[union-attr]
        ("a", 1, 1, RunStatus.SUCCESS),
        ("b", 1, 1, RunStatus.SUCCESS),
        ("c", 1, 0, RunStatus.SUCCESS),
    ]
    last = sent[-1]
    assert isinstance(last.command, DecideExecution)
    # Each report starts its stage and finishes it: two events per route.
    assert run.version == before + 2 * len(ROUTES)
    assert last.command.expected_version == run.version
    assert last.command_id == decision_command_id(ROLE, run.id, run.version, C)

    # The handler, applying the same reports, is on that version when the decision comes.
    handled = execution()
    handled.start(now=AT)
    for command in reports:
        assert isinstance(command, ReportStageProgress)
        handled.report_stage(
            command.route,
            command.messages_in,
            command.messages_out,
            command.messages_failed,
            finished=command.finished,
            at=AT,
        )
    assert handled.decide(C, expected_version=last.command.expected_version, now=AT)


def test_finishing_again_sends_only_the_decision_with_the_same_id() -> None:
    run = execution()
    found = progress(a=RouteProgress(1, 1, 0), b=RouteProgress(1, 1, 0), c=RouteProgress(1, 0, 0))
    first = finishing(run, found, C, AT)
    # `run` now holds the finished stages, as the event store will after the reports.
    again = finishing(run, found, C, datetime(2026, 1, 2, tzinfo=UTC))
    assert len(again) == 1
    assert again[0].command_id == first[-1].command_id


def test_a_failure_names_its_route_and_finishes_the_others_by_what_they_did() -> None:
    run = execution()
    found = progress(
        drained=False,
        failed=True,
        a=RouteProgress(1, 1, 0, 0),
        b=RouteProgress(1, 0, 1, 0),
    )
    sent = finishing(run, found, F, AT, "route(s) dead-lettered messages: b (1)")
    statuses = {
        o.command.route: o.command.finished
        for o in sent
        if isinstance(o.command, ReportStageProgress)
    }
    assert statuses == {
        "a": RunStatus.SUCCESS,
        "b": RunStatus.FAILURE,
        "c": RunStatus.CANCELLED,
    }
    decision = sent[-1].command
    assert isinstance(decision, DecideExecution)
    assert (decision.decision, decision.reason) == (F, "route(s) dead-lettered messages: b (1)")


def test_progress_is_reported_when_it_moved_and_with_the_same_id_for_the_same_counts() -> None:
    execution_id = uuid.uuid4()
    found = progress(
        drained=False,
        a=RouteProgress(2, 2, 0, 0),
        b=RouteProgress(1, 0, 0, 1),
        c=RouteProgress(0, 0, 0, 1),
    )
    sent = progress_reports(execution_id, found, {"a": RouteProgress(2, 2, 0, 5)}, AT)
    # a did not move (outstanding is not reported); c has nothing to say yet.
    assert [o.command.route for o in sent] == ["b"]  # type: ignore[union-attr]
    later = report(execution_id, "b", RouteProgress(1, 0, 0, 0), datetime(2027, 1, 1, tzinfo=UTC))
    assert later.command_id == sent[0].command_id
    assert report(execution_id, "b", RouteProgress(2, 0, 0), AT).command_id != later.command_id


def test_worker_group_ids_and_sessions() -> None:
    settings = Settings(consumer_group="g", orchestrator_session_timeout_ms=2000)
    config_id = UUID(int=7)
    assert route_group_id(settings, config_id, "r") == f"g.route.{config_id}.r"
    assert route_group_id(settings, config_id, "r", 3) == f"g.route.{config_id}.v3.r"
    assert routes_group_id(settings) == "g.routes"  # the role's one route consumer
    assert consumer_options(settings) == {"session_timeout_ms": 2000, "heartbeat_interval_ms": 666}


def test_a_version_scoped_worker_owns_only_its_versions_executions() -> None:
    config_id = uuid.uuid4()
    scope = RouteScope(config_id, "a", {}, 2)
    info = ExecutionInfo(uuid.uuid4(), config_id, "running", False, "a", 2)
    assert scope.owns(info)
    assert not scope.owns(ExecutionInfo(info.execution_id, config_id, "running", False, "a", 1))
    assert not scope.owns(ExecutionInfo(info.execution_id, uuid.uuid4(), "running", False, "a", 2))
    assert RouteScope(config_id, "a", {}).owns(
        ExecutionInfo(info.execution_id, config_id, "running", False, "a", 1)
    )


# --- the ledger's progress -------------------------------------------------------------------


def test_ledger_progress_per_route_and_verdicts(store_url: str) -> None:
    ledger = Ledger(store_url)
    try:
        done, failing, waiting, empty = (uuid.uuid4() for _ in range(4))
        m = [uuid.uuid4() for _ in range(6)]
        # done: a consumed m0 and produced m1 for b, and m2 to a topic nobody reads.
        ledger.expect_many([(done, "a", m[0]), (done, "b", m[1])])
        ledger.produce_many([(done, "a", m[1]), (done, "a", m[2]), (done, "a", m[1])])
        ledger.consume_many([(done, "a", m[0]), (done, "b", m[1])])
        # failing: b dead-lettered m3.
        ledger.expect_many([(failing, "b", m[3])])
        ledger.fail_many([(failing, "b", m[3])])
        # waiting: m4 expected by c, not consumed yet.
        ledger.expect_many([(waiting, "c", m[4])])

        found = ledger.progress([done, failing, waiting, empty])
        assert found[done] == ExecutionProgress(
            {"a": RouteProgress(1, 2, 0, 0), "b": RouteProgress(1, 0, 0, 0)},
            drained=True,
            failed=False,
        )
        assert found[failing] == ExecutionProgress(
            {"b": RouteProgress(1, 0, 1, 0)}, drained=False, failed=True
        )
        assert found[waiting] == ExecutionProgress(
            {"c": RouteProgress(0, 0, 0, 1)}, drained=False, failed=False
        )
        assert found[empty] == ExecutionProgress.empty()
        assert found[done].drained == ledger.drained(done)
    finally:
        ledger.close()


# --- the lookup route workers use ------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_execution_lookup_reads_the_event_store_and_caches_by_status(
    sqlite_url: str,
) -> None:
    store = open_command_store(sqlite_url)
    reader = EventStoreReader(sqlite_url)
    clock = Clock()
    infos = ExecutionInfos(reader, live_ttl_s=0.5, monotonic=clock)
    try:
        run = execution(skip_init_message=True)
        store.save(run)
        assert await infos(uuid.uuid4()) is None
        assert await infos(uuid.uuid4()) is None
        assert infos.reads == 2  # the unknown are never cached

        info = await infos(run.id)
        assert info == ExecutionInfo(run.id, run.config_id, "pending", True, "a", 1)  # type: ignore[arg-type]
        run.start(now=AT)
        store.save(run)
        assert (await infos(run.id)) == info  # cached for the TTL
        clock.now = 0.6
        assert (await infos(run.id)).status == "running"  # type: ignore[union-attr]

        run.cancel(now=AT)
        store.save(run)
        clock.now = 1.2
        assert (await infos(run.id)).finished  # type: ignore[union-attr]
        reads = infos.reads
        clock.now = 1000.0
        assert (await infos(run.id)).finished  # type: ignore[union-attr]
        assert infos.reads == reads  # finished: cached for good
    finally:
        reader.close()
        store.close()


async def test_a_config_is_read_at_the_version_an_execution_runs(sqlite_url: str) -> None:
    from domain.config import Config

    store = open_command_store(sqlite_url)
    reader = EventStoreReader(sqlite_url)
    try:
        text = (EXAMPLES / "orders.yaml").read_text()
        config = Config.create("orders", text, AT)
        changed = yaml.safe_load(text)
        changed["routes"]["notify"]["adapters"] = [{"type": "pass_through"}]
        config.update(changed, AT)
        store.save(config)
        first, second = reader.config(config.id, 1), reader.config(config.id, 2)
        assert first is not None and second is not None
        assert first.document["routes"]["notify"]["adapters"][0]["type"] == "delay"
        assert second.document["routes"]["notify"]["adapters"] == [
            {"type": "pass_through", "config": {}, "condition": None}
        ]
        assert reader.config(config.id, 3) is None
        assert reader.config(uuid.uuid4(), 1) is None
    finally:
        reader.close()
        store.close()


# --- the examples ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_validates_and_its_json_twin_is_the_same_document(path: Path) -> None:
    registry, _ = load_adapter_registry([])
    report, parsed = validate_config(path.read_text(), registry)
    assert report.is_valid, report
    assert report.error_count == 0
    twin = path.with_suffix(".json")
    assert json.loads(twin.read_text()) == yaml.safe_load(path.read_text())
    report_json, parsed_json = validate_config(twin.read_text(), registry)
    assert report_json == report and parsed_json == parsed
    assert len(yaml.safe_load(path.read_text())["routes"]) >= 3 or path.stem != "orders"
