"""ReplayExecution's handler (docs/replay.md): a child execution of a config execution,
created with a manifest of what to publish and no init message.

Checks, in the order a client can fix them: the parent exists (by id or tag; 404) and is
a config's execution (400); the child's config and version exist (404); `from_stage` is
a route of the parent's config and `to_route` one of the child's (400); there are
messages to replay (404 `NoStoredMessages`: a replay that finds nothing fails loudly; 410
`StoredMessagesExpired` when retention removed them, PIPELINES_RETENTION_ROUTE_MESSAGES_S) and
no more than `PIPELINES_REPLAY_MAX_MESSAGES` unless `allow_large` (400
`ReplayTooLarge`). A dry run answers the plan there and changes nothing. Then, as for a
RunConfig: the child id and tag must be new (409) and an orchestrator must admit it (503).

The messages are read from the message store at decision time only to count and to fix
the manifest's `stored_until`; the relay's replay publisher reads them again from it
(services.service_layer.replay_plan).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

from contracts.replay_commands import ReplayDirection, ReplayExecution
from contracts.route_messages import INIT_ROUTE, RouteMessage, init_message_id
from contracts.statuses import ReplaySource
from domain.config import Config
from domain.errors import DomainError
from domain.execution import Execution, RunOwnerKind
from domain.tag_index import TagIndex
from services.service_layer import replay_plan as plan
from services.service_layer.handlers.configs import new_config_execution
from services.service_layer.handlers.pipelines import existing_config
from services.service_layer.handlers.runs import unknown_execution
from services.service_layer.handling import Context, Decision
from services.service_layer.replies import execution_response

DRY_RUN_SHOWN: Final = 100
"""A dry run lists this many of its messages (and counts them all)."""


def replay_execution(cmd: ReplayExecution, ctx: Context) -> Decision:
    parent = _parent(ctx, cmd.parent)
    parent_config = _config_at(ctx, _config_id(parent), _config_version(parent))
    config_id = cmd.config_id or parent_config.id
    if cmd.config_version is not None:
        version = cmd.config_version
    elif config_id == parent_config.id:
        version = parent_config.config_version  # the parent's immutable routes
    else:
        version = existing_config(ctx, config_id).config_version
    config = _config_at(ctx, config_id, version)
    routes: dict[str, Any] = config.document["routes"]
    if cmd.replay_source is ReplaySource.LINEAGE:
        manifest = _lineage(cmd, ctx, parent, parent_config, routes)
    else:
        manifest = _republished(cmd, ctx, parent, parent_config, routes)
    if cmd.init_payload_overrides:
        manifest["overrides"] = dict(cmd.init_payload_overrides)
    planned = _planned(manifest, cmd.execution_id, ctx)
    manifest["count"] = len(planned)
    if not planned:
        _check_not_swept(manifest, ctx)
        raise DomainError(
            "NoStoredMessages",
            "Nothing to replay: no stored message matches",
            {"parent_execution_id": str(parent.id), "from_stage": cmd.from_stage},
            404,
        )
    if len(planned) > ctx.replay_max_messages and not cmd.allow_large:
        raise DomainError(
            "ReplayTooLarge",
            f"The replay would publish {len(planned)} messages, more than the limit of "
            f"{ctx.replay_max_messages}; send allow_large to confirm",
            {"message_count": len(planned), "limit": ctx.replay_max_messages},
            400,
        )
    if cmd.dry_run:
        return Decision(None, _dry_run(cmd, parent, config, manifest, planned), 200)
    child = new_config_execution(
        ctx,
        config,
        cmd.execution_id,
        tag=cmd.tag,
        parent_execution_id=parent.id,
        root_execution_id=parent.root_execution_id or parent.id,
        replay_source=cmd.replay_source,
        replay={**manifest, "metadata": dict(cmd.metadata)},
        skip_init_message=True,
    )
    return Decision(child.id, execution_response(child, started_by=ctx.sent_by), 200)


def _republished(
    cmd: ReplayExecution,
    ctx: Context,
    parent: Execution,
    parent_config: Config,
    routes: dict[str, Any],
) -> dict[str, Any]:
    """The manifest of a storage or manual replay: one source (or the given payloads),
    one target route."""
    source, selected, payloads, from_route = _messages(cmd, ctx, parent, parent_config)
    to_route = cmd.to_route or from_route
    if to_route is None:
        raise _invalid("to_route", "A manual replay needs to_route", None)
    if to_route not in routes:
        raise _invalid("to_route", f"Route {to_route!r} is not in the config", to_route)
    return plan.manifest(
        to_route=to_route,
        to_topic=routes[to_route]["inbound"]["topic"],
        source=source,
        selected=selected,
        payloads=payloads,
        only_failed=cmd.only_failed,
    )


def _lineage(
    cmd: ReplayExecution,
    ctx: Context,
    parent: Execution,
    parent_config: Config,
    routes: dict[str, Any],
) -> dict[str, Any]:
    """The manifest of a lineage replay: every route of the parent is fed what it had not
    finished, on the child config's topics. Only a finished parent: a running one's ledger
    still changes."""
    if not parent.is_terminal:
        raise DomainError(
            "ExecutionStillRunning",
            f"Execution {parent.id} is {parent.execution_status}: resume it once it has "
            "ended (cancel it first to resume it now)",
            {"execution_id": str(parent.id), "status": str(parent.execution_status)},
            409,
        )
    if cmd.only_failed or cmd.to_route is not None or cmd.direction is not ReplayDirection.CONSUMED:
        raise _invalid(
            "replay_source",
            "A lineage replay feeds every route what it had not finished: it takes no "
            "to_route, direction or only_failed",
            "lineage",
        )
    if cmd.from_stage is not None:
        _stage_route(cmd.from_stage, parent_config)  # accepted, and checked, for FactFlow
    if ctx.stored is None or ctx.unfinished is None:
        raise _no_store()
    init = None
    if parent.init_topic and not parent.skip_init_message:
        init = RouteMessage(
            id=init_message_id(parent.id),
            execution_id=parent.id,
            route=INIT_ROUTE,
            payload=dict(parent.init_payload or {}),
            correlation_id=str(parent.id),
            time=parent.created_at,
        )
    parent_routes = list(parent_config.document["routes"])
    missing = [r for r in parent_routes if r not in routes]
    unfinished_routes = {route for route, _ in ctx.unfinished.unfinished(parent.id)}
    if missing and unfinished_routes & set(missing):
        raise _invalid(
            "config_id", f"The child's config lacks the routes {sorted(missing)}", missing
        )
    return plan.lineage_manifest(
        parent_id=parent.id,
        parent_routes=parent_routes,
        topics={r: routes[r]["inbound"]["topic"] for r in routes if r in parent_routes},
        init=init,
        parent_replay=parent.replay,
        parent_created=parent.created_at,
    )


def _planned(manifest: dict[str, Any], child_id: UUID, ctx: Context) -> list[plan.Planned]:
    try:
        return plan.messages(manifest, child_id, ctx.now, ctx.stored, ctx.unfinished)
    except plan.MissingMessage as missing:
        _check_not_swept(manifest, ctx)
        raise DomainError(
            "MissingStoredMessages",
            f"Cannot replay: {missing}",
            {"route": missing.route, "message_id": str(missing.message_id)},
            404,
        ) from None


def _check_not_swept(manifest: dict[str, Any], ctx: Context) -> None:
    """410 `StoredMessagesExpired` if retention removed the messages the replay reads: a
    replay of an execution past its window fails saying why, not as "nothing stored"."""
    execution_id = plan.read_from(manifest)
    if execution_id is None or ctx.stored is None:
        return
    swept_ns = ctx.stored.swept(execution_id)
    if swept_ns is None:
        return
    swept_at = datetime.fromtimestamp(swept_ns / 1e9, UTC).isoformat()
    raise DomainError(
        "StoredMessagesExpired",
        f"Cannot replay: the stored messages of execution {execution_id} were removed by "
        f"retention at {swept_at} (PIPELINES_RETENTION_ROUTE_MESSAGES_S)",
        {"execution_id": str(execution_id), "swept_at": swept_at},
        410,
    )


def _no_store() -> DomainError:
    return DomainError(
        "MessageStoreUnavailable", "This handler cannot read the stored messages", {}, 503
    )


def _parent(ctx: Context, given: str) -> Execution:
    """The execution `given` names: its id, else its tag."""
    execution_id: UUID | None
    try:
        execution_id = UUID(given)
    except ValueError:
        index = ctx.uow.get(TagIndex, TagIndex.create_id(given))
        execution_id = None if index is None else index.holder
    found = None if execution_id is None else ctx.uow.get(Execution, execution_id)
    if found is None or found.deleted:
        raise DomainError(
            "UnknownExecution", f"Execution {given} not found", {"execution_id": given}, 404
        )
    if found.owner_kind is not RunOwnerKind.CONFIG:
        raise _invalid("parent", "Only a config's execution can be replayed", given)
    return found


def _config_id(execution: Execution) -> UUID:
    assert execution.config_id is not None  # a config's execution always has one
    return execution.config_id


def _config_version(execution: Execution) -> int:
    assert execution.config_version is not None
    return execution.config_version


def _config_at(ctx: Context, config_id: UUID, version: int) -> Config:
    config = ctx.uow.get_at(Config, config_id, version)
    if config is None:
        raise DomainError(
            "UnknownConfigVersion",
            f"Config {config_id} has no version {version}",
            {"config_id": str(config_id), "config_version": version},
            404,
        )
    return config


def _messages(
    cmd: ReplayExecution, ctx: Context, parent: Execution, parent_config: Config
) -> tuple[plan.Source | None, list[plan.Stored], list[dict[str, Any]] | None, str | None]:
    """(source, its selected messages, or the given payloads, the route they came from)."""
    if cmd.replay_source is ReplaySource.MANUAL and cmd.messages is not None:
        return None, [], list(cmd.messages), None
    if cmd.replay_source is ReplaySource.MANUAL:
        assert cmd.from_path is not None
        source = _path(ctx, cmd.from_path)
    else:
        assert cmd.from_stage is not None
        route = _stage_route(cmd.from_stage, parent_config)
        direction: plan.Direction = "out" if cmd.direction is ReplayDirection.PRODUCED else "in"
        source = plan.Source(parent.id, route, direction)
    if cmd.only_failed and source.direction == "out":
        raise _invalid("only_failed", "Only consumed messages can have failed", True)
    if ctx.stored is None:
        raise DomainError("MessageStoreUnavailable", "This handler has no message store", {}, 503)
    selected = plan.select(
        source.read(ctx.stored), only_failed=cmd.only_failed, stored_until=2**63 - 1
    )
    return source, selected, None, source.route


def _stage_route(from_stage: str, config: Config) -> str:
    """`route`, or FactFlow's `route/stage` (a stage is a route here: the part after the
    slash must be the route's own name or a step number of it)."""
    route, _, stage = from_stage.partition("/")
    routes: dict[str, Any] = config.document["routes"]
    if route not in routes:
        raise _invalid("from_stage", f"Route {route!r} is not in the parent's config", from_stage)
    steps = len(routes[route].get("adapters") or ())
    if stage and stage != route and not (stage.isdigit() and int(stage) <= steps):
        raise _invalid(
            "from_stage", f"{from_stage!r} names no stage of route {route!r}", from_stage
        )
    return route


def _path(ctx: Context, from_path: str) -> plan.Source:
    """`{execution_id}/{route}/{consumed|produced}`: any execution's stored messages."""
    parts = from_path.strip("/").split("/")
    directions = {"consumed": "in", "produced": "out", "in": "in", "out": "out"}
    try:
        execution_id = UUID(parts[0])
        direction = directions[parts[2]]
    except (ValueError, IndexError, KeyError):
        raise _invalid(
            "from_path", "from_path is {execution_id}/{route}/{consumed|produced}", from_path
        ) from None
    if len(parts) != 3:
        raise _invalid("from_path", "from_path has three parts", from_path)
    found = ctx.uow.get(Execution, execution_id)
    if found is None or found.deleted:
        raise unknown_execution(execution_id)
    return plan.Source(execution_id, parts[1], "in" if direction == "in" else "out")


def _dry_run(
    cmd: ReplayExecution,
    parent: Execution,
    config: Config,
    manifest: dict[str, Any],
    planned: list[plan.Planned],
) -> dict[str, Any]:
    """What the replay would publish, to which topics, in which child; nothing changes."""
    by_route: dict[str, int] = {}
    for item in planned:
        by_route[item.route] = by_route.get(item.route, 0) + 1
    return {
        "dry_run": True,
        "parent_execution_id": str(parent.id),
        "root_execution_id": str(parent.root_execution_id or parent.id),
        "replay_source": str(cmd.replay_source),
        "config_id": str(config.id),
        "config_version": config.config_version,
        "to_route": manifest.get("to_route"),
        "to_topic": manifest.get("to_topic"),
        "from": manifest.get("from"),
        "message_count": len(planned),
        "routes": by_route,
        "messages": [
            {
                "id": str(p.message.id),
                "route": p.route,
                "topic": p.topic,
                "payload": p.message.payload,
            }
            for p in planned[:DRY_RUN_SHOWN]
        ],
    }


def _invalid(field: str, message: str, value: Any) -> DomainError:
    return DomainError("InvalidReplay", message, {"field": field, "value": value}, 400)
