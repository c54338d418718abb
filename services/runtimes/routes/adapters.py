"""The adapters a route runs: the built-ins of `domain.adapters.BUILTIN_ADAPTERS` made
executable, plus plug-ins found through Python entry points (group
`pipeline_service.adapters`). A config names adapter types only; nothing it says is ever
imported.

An adapter takes one payload (a JSON object) and returns a list of payloads: `[]` drops
the message, one is the usual case, several fan out (each output goes to every outbound
topic of the route, with its own id). `apply(payload, config, context)` must not change
the payload it is given (a retry is given a fresh copy anyway). A step runs its adapter
only when its condition (services.runtimes.routes.conditions) matches, or when it has none;
a message its condition does not match passes the step unchanged, except at a `filter`
step (an adapter with `drops_unmatched = True`), which drops it.

Built-ins:

- `pass_through` returns the payload.
- `map` builds a new payload: `fields` maps each target key to a template rendered with
  `string.Formatter`'s grammar (the one validation checks). Field names read the message
  as conditions do, `.name` and `[name]` alike: `{payload.x}` is `{payload[x]}`. A template
  that is exactly one field (`"{payload.amount}"`) keeps the value's JSON type; any other
  renders to a string (objects, arrays, booleans and null as JSON text). A field the
  message does not have fails the message.
- `filter` passes the messages its condition matches and drops the others.
- `delay` waits `seconds`, then passes the payload on.
- `fail` raises `AdapterFailure(message)` (for testing error handling; with a condition,
  only for the messages it matches).

A plug-in entry point names an object (or a class, instantiated without arguments) with
`spec: domain.adapters.AdapterSpec` whose `name` is the entry point's name, and
`async def apply(payload, config, context) -> list[dict]`. A plug-in cannot replace a
built-in. One that fails to load is logged and left out (its type is then unregistered,
so configs naming it fail validation with E103), or raises with `strict=True`.
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]  # string.Formatter's field-name parser
import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import EntryPoint, entry_points
from string import Formatter
from typing import Any, Final, Protocol, cast, runtime_checkable
from uuid import UUID

import orjson

from contracts.config_document import AdapterStep
from contracts.route_messages import RouteMessage
from domain.adapters import BUILTIN_ADAPTERS, AdapterRegistry, AdapterSpec
from services.runtimes.routes.conditions import MISSING, evaluate, lookup

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "pipeline_service.adapters"
Payload = dict[str, Any]


class AdapterFailure(Exception):
    """A message an adapter could not handle; after the route's retries it is
    dead-lettered with this message. Any other exception from an adapter becomes one."""

    def __init__(self, message: str, *, adapter: str | None = None, step: int | None = None):
        super().__init__(message)
        self.message = message
        self.adapter = adapter
        self.step = step

    @classmethod
    def of_step(cls, step: AdapterStep, index: int, message: str) -> AdapterFailure:
        """The failure of a route's step `index` (its adapter is `step.type`)."""
        return cls(message, adapter=step.type, step=index)

    def details(self) -> dict[str, Any]:
        return {"adapter": self.adapter, "step": self.step}


class AdapterPluginError(Exception):
    """An entry point that does not give a usable adapter."""


@dataclass(frozen=True)
class AdapterContext:
    """Who the payload belongs to: its message's envelope, the route running the step, and
    the step's index in that route."""

    execution_id: UUID
    message_id: UUID
    source_route: str
    stage: int
    correlation_id: str | None
    route: str
    step: int = 0

    @classmethod
    def of(cls, message: RouteMessage, route: str) -> AdapterContext:
        return cls(
            execution_id=message.execution_id,
            message_id=message.id,
            source_route=message.route,
            stage=message.stage,
            correlation_id=message.correlation_id,
            route=route,
        )

    def view(self, payload: Payload) -> dict[str, Any]:
        """What conditions and templates read (services.runtimes.routes.conditions)."""
        return {
            "payload": payload,
            "id": str(self.message_id),
            "execution_id": str(self.execution_id),
            "route": self.source_route,
            "stage": self.stage,
            "correlation_id": self.correlation_id,
        }


@runtime_checkable
class Adapter(Protocol):
    @property
    def spec(self) -> AdapterSpec: ...

    async def apply(
        self, payload: Payload, config: Mapping[str, Any], context: AdapterContext
    ) -> list[Payload]: ...


ApplyFn = Callable[[Payload, Mapping[str, Any], AdapterContext], Awaitable[list[Payload]]]


@dataclass(frozen=True)
class FunctionAdapter:
    """An adapter made of a spec and a function (how the built-ins are made)."""

    spec: AdapterSpec
    function: ApplyFn
    drops_unmatched: bool = False

    async def apply(
        self, payload: Payload, config: Mapping[str, Any], context: AdapterContext
    ) -> list[Payload]:
        return await self.function(payload, config, context)


# --- the built-ins --------------------------------------------------------------------------


class _TemplateFormatter(Formatter):
    """`string.Formatter` whose field names read the message view: `.x` and `[x]` are both
    a key (or an array index); a missing one is an AdapterFailure."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if not field_name:
            raise AdapterFailure("an empty '{}' field names nothing: write e.g. '{payload.x}'")
        try:
            first, rest = _string.formatter_field_name_split(field_name)
            keys: list[str | int] = [first, *(key for _, key in rest)]
        except ValueError as error:
            raise AdapterFailure(f"field '{field_name}' is not well formed: {error}") from error
        value = lookup(kwargs, keys)
        if value is MISSING:
            raise AdapterFailure(f"the message has no field '{field_name}'")
        return value, first

    def format_field(self, value: Any, format_spec: str) -> Any:
        if not format_spec and (value is None or isinstance(value, bool | dict | list)):
            return orjson.dumps(value).decode()
        return super().format_field(value, format_spec)


_FORMATTER: Final = _TemplateFormatter()


def render(template: str, view: Mapping[str, Any]) -> Any:
    """A `map` template's value (see the module docstring)."""
    parts = list(_FORMATTER.parse(template))
    if len(parts) == 1:
        literal, field, spec, conversion = parts[0]
        if not literal and field is not None and not spec and conversion is None:
            return _FORMATTER.get_field(field, (), view)[0]
    try:
        return _FORMATTER.vformat(template, (), view)
    except AdapterFailure:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise AdapterFailure(f"template {template!r} could not be rendered: {error}") from error


async def _pass_through(
    payload: Payload, config: Mapping[str, Any], context: AdapterContext
) -> list[Payload]:
    return [payload]


async def _map(
    payload: Payload, config: Mapping[str, Any], context: AdapterContext
) -> list[Payload]:
    view = context.view(payload)
    out: Payload = {}
    for target, template in config["fields"].items():
        try:
            out[target] = render(template, view)
        except AdapterFailure as failure:
            raise AdapterFailure(f"map field '{target}': {failure.message}") from failure
    return [out]


async def _delay(
    payload: Payload, config: Mapping[str, Any], context: AdapterContext
) -> list[Payload]:
    await asyncio.sleep(float(config["seconds"]))
    return [payload]


async def _fail(
    payload: Payload, config: Mapping[str, Any], context: AdapterContext
) -> list[Payload]:
    raise AdapterFailure(str(config.get("message") or "the fail adapter's condition matched"))


_BUILTIN_FUNCTIONS: Final[dict[str, ApplyFn]] = {
    "pass_through": _pass_through,
    "map": _map,
    "filter": _pass_through,  # runs only for matching messages; the rest are dropped
    "delay": _delay,
    "fail": _fail,
}
_DROPS_UNMATCHED: Final = frozenset({"filter"})


def builtin_adapters() -> list[Adapter]:
    return [
        FunctionAdapter(BUILTIN_ADAPTERS[name], function, drops_unmatched=name in _DROPS_UNMATCHED)
        for name, function in _BUILTIN_FUNCTIONS.items()
    ]


# --- the runtime table ----------------------------------------------------------------------


class AdapterRuntime(Mapping[str, Adapter]):
    """Adapter type name -> adapter, and the running of a route's steps."""

    def __init__(self, adapters: Iterable[Adapter]) -> None:
        self._adapters: dict[str, Adapter] = {}
        for adapter in adapters:
            if adapter.spec.name in self._adapters:
                raise ValueError(f"adapter type {adapter.spec.name!r} is registered twice")
            self._adapters[adapter.spec.name] = adapter

    def __getitem__(self, name: str) -> Adapter:
        return self._adapters[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._adapters)

    def __len__(self) -> int:
        return len(self._adapters)

    def registry(self) -> AdapterRegistry:
        """The specs, for validating configs against exactly what this runtime can run."""
        return AdapterRegistry(adapter.spec for adapter in self._adapters.values())

    async def run_steps(
        self, steps: Sequence[AdapterStep], payload: Payload, context: AdapterContext
    ) -> list[Payload]:
        """The payloads that leave the route's last step; AdapterFailure if a step fails."""
        current = [payload]
        for index, step in enumerate(steps):
            adapter = self._adapters.get(step.type)
            if adapter is None:
                raise AdapterFailure.of_step(
                    step,
                    index,
                    f"adapter type '{step.type}' is not registered in this orchestrator",
                )
            step_context = replace(context, step=index)
            drops = bool(getattr(adapter, "drops_unmatched", False))
            following: list[Payload] = []
            for item in current:
                if step.condition is None or evaluate(step.condition, step_context.view(item)):
                    following.extend(await _apply(adapter, step, item, step_context, index))
                elif not drops:
                    following.append(item)
            current = following
            if not current:
                break
        return current


async def _apply(
    adapter: Adapter, step: AdapterStep, payload: Payload, context: AdapterContext, index: int
) -> list[Payload]:
    try:
        outputs = await adapter.apply(payload, step.config, context)
    except AdapterFailure as failure:
        failure.adapter, failure.step = step.type, index
        raise
    except Exception as error:
        raise AdapterFailure.of_step(
            step, index, f"adapter '{step.type}' raised {type(error).__name__}: {error}"
        ) from error
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise AdapterFailure.of_step(
            step,
            index,
            f"adapter '{step.type}' returned {type(outputs).__name__}, not a list of JSON objects",
        )
    for output in outputs:
        try:
            orjson.dumps(output)
        except TypeError as error:
            raise AdapterFailure.of_step(
                step, index, f"adapter '{step.type}' returned a payload that is not JSON: {error}"
            ) from error
    return outputs


# --- plug-ins -------------------------------------------------------------------------------


def load_plugin(entry_point: EntryPoint) -> Adapter:
    """The adapter an entry point gives, checked; AdapterPluginError says what is wrong."""
    try:
        found = entry_point.load()
        adapter = found() if inspect.isclass(found) else found
    except Exception as error:
        raise AdapterPluginError(
            f"adapter plug-in '{entry_point.name}' ({entry_point.value}) failed to load: "
            f"{type(error).__name__}: {error}"
        ) from error
    spec = getattr(adapter, "spec", None)
    if not isinstance(spec, AdapterSpec):
        raise AdapterPluginError(
            f"adapter plug-in '{entry_point.name}' has no `spec` (a domain.adapters.AdapterSpec)"
        )
    if not inspect.iscoroutinefunction(getattr(adapter, "apply", None)):
        raise AdapterPluginError(
            f"adapter plug-in '{entry_point.name}' has no `async def apply(payload, config, "
            "context)`"
        )
    if spec.name != entry_point.name:
        raise AdapterPluginError(
            f"adapter plug-in '{entry_point.name}' names its spec '{spec.name}': the two must "
            "be the same (the entry point name is the type configs use)"
        )
    if spec.name in BUILTIN_ADAPTERS:
        raise AdapterPluginError(f"adapter plug-in '{spec.name}' would replace a built-in")
    return cast(Adapter, adapter)


def load_adapter_registry(
    found: Iterable[EntryPoint] | None = None, *, strict: bool = False
) -> tuple[AdapterRegistry, AdapterRuntime]:
    """Built-ins plus the installed plug-ins (or the entry points `found`): the registry
    configs are validated against, and the runtime that runs them."""
    plugins = entry_points(group=ENTRY_POINT_GROUP) if found is None else found
    adapters = builtin_adapters()
    names = {adapter.spec.name for adapter in adapters}
    for entry_point in plugins:
        try:
            adapter = load_plugin(entry_point)
            if adapter.spec.name in names:
                raise AdapterPluginError(
                    f"adapter plug-in '{adapter.spec.name}' is installed twice"
                )
        except AdapterPluginError as error:
            if strict:
                raise
            log.error("%s; configs naming it will not validate", error)
            continue
        adapters.append(adapter)
        names.add(adapter.spec.name)
    runtime = AdapterRuntime(adapters)
    return runtime.registry(), runtime


__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "AdapterContext",
    "AdapterFailure",
    "AdapterPluginError",
    "AdapterRuntime",
    "FunctionAdapter",
    "Payload",
    "builtin_adapters",
    "load_adapter_registry",
    "load_plugin",
    "render",
]
