"""The adapter runtime: every built-in, conditions on steps, chains, failures, and plug-ins
loaded through real entry points (importlib.metadata EntryPoint objects pointing at
tests.runtimes.orchestrator.plugin_adapters: the same loading path an installed package takes)."""

from __future__ import annotations

import asyncio
import logging
from importlib.metadata import EntryPoint
from typing import Any
from uuid import UUID

import pytest

from contracts.config_document import AdapterStep, Condition, ConditionOperator
from domain.adapters import BUILTIN_ADAPTERS
from domain.validation import validate_config
from services.runtimes.routes.adapters import (
    ENTRY_POINT_GROUP,
    AdapterContext,
    AdapterFailure,
    AdapterPluginError,
    AdapterRuntime,
    builtin_adapters,
    load_adapter_registry,
)

CONTEXT = AdapterContext(
    execution_id=UUID("0190a000-0000-7000-8000-000000000001"),
    message_id=UUID("0190a000-0000-7000-8000-000000000002"),
    source_route="init",
    stage=0,
    correlation_id="corr-1",
    route="enrich",
)
RUNTIME = AdapterRuntime(builtin_adapters())
ORDER: dict[str, Any] = {
    "id": 7,
    "amount": 12.5,
    "customer": {"name": "Ada", "vip": True},
    "lines": [{"sku": "X-1"}, {"sku": "Y-2"}],
}


def step(kind: str, config: dict[str, Any] | None = None, **condition: Any) -> AdapterStep:
    return AdapterStep(
        type=kind, config=config or {}, condition=Condition(**condition) if condition else None
    )


async def run(*steps: AdapterStep, payload: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return await RUNTIME.run_steps(list(steps), dict(payload or ORDER), CONTEXT)


def plugin(name: str, target: str) -> EntryPoint:
    return EntryPoint(
        name=name,
        value=f"tests.runtimes.orchestrator.plugin_adapters:{target}",
        group=ENTRY_POINT_GROUP,
    )


# --- built-ins ------------------------------------------------------------------------------


def test_the_runtime_has_exactly_the_builtin_types() -> None:
    assert set(RUNTIME) == set(BUILTIN_ADAPTERS)
    assert dict(RUNTIME.registry()) == dict(BUILTIN_ADAPTERS)


async def test_pass_through_returns_the_payload() -> None:
    assert await run(step("pass_through")) == [ORDER]


async def test_no_steps_pass_the_payload_on() -> None:
    assert await run() == [ORDER]


async def test_map_builds_a_new_payload_from_templates() -> None:
    fields = {
        "order": "{payload.id}",  # exactly one field: keeps its JSON type
        "amount": "{payload[amount]}",
        "customer": "{customer}",  # a name that is no envelope name reads the payload
        "second": "{payload.lines.1.sku}",
        "first": "{payload[lines][0][sku]}",
        "text": "order {payload.id} for {payload.customer.name}",
        "vip": "vip={payload.customer.vip} lines={payload.lines}",
        "padded": "{payload.id:>4}",
        "envelope": "{route}/{stage}/{correlation_id}/{execution_id}",
        "plain": "no fields at all",
    }
    [out] = await run(step("map", {"fields": fields}))
    assert out == {
        "order": 7,
        "amount": 12.5,
        "customer": {"name": "Ada", "vip": True},
        "second": "Y-2",
        "first": "X-1",
        "text": "order 7 for Ada",
        "vip": 'vip=true lines=[{"sku":"X-1"},{"sku":"Y-2"}]',
        "padded": "   7",
        "envelope": f"init/0/corr-1/{CONTEXT.execution_id}",
        "plain": "no fields at all",
    }


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{payload.missing}", "the message has no field 'payload.missing'"),
        ("total {payload.lines.9.sku}", "the message has no field 'payload.lines.9.sku'"),
        ("{}", "an empty '{}' field names nothing"),
        ("{payload.customer.name:d}", "could not be rendered"),
    ],
)
async def test_map_fails_the_message_on_a_template_it_cannot_render(
    template: str, problem: str
) -> None:
    with pytest.raises(AdapterFailure) as raised:
        await run(step("map", {"fields": {"x": template}}))
    assert problem in raised.value.message
    assert raised.value.message.startswith("map field 'x':")
    assert (raised.value.adapter, raised.value.step) == ("map", 0)


async def test_filter_keeps_what_its_condition_matches_and_drops_the_rest() -> None:
    kept = step("filter", field="payload.amount", operator="gt", value=10)
    dropped = step("filter", field="payload.amount", operator="gt", value=100)
    assert await run(kept) == [ORDER]
    assert await run(dropped) == []
    # Nothing runs after a step that dropped everything.
    assert await run(dropped, step("fail")) == []


async def test_delay_waits_then_passes_the_payload_on() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await run(step("delay", {"seconds": 0.05})) == [ORDER]
    # A lower bound only: asyncio never wakes a sleeper early by more than its clock
    # resolution, so this cannot fail on a slow machine.
    assert loop.time() - started >= 0.05 - 0.01


async def test_fail_raises_with_its_message() -> None:
    with pytest.raises(AdapterFailure, match=r"^boom$") as raised:
        await run(step("pass_through"), step("fail", {"message": "boom"}))
    assert raised.value.details() == {"adapter": "fail", "step": 1}


async def test_fail_without_a_message_says_why() -> None:
    with pytest.raises(AdapterFailure, match="fail adapter's condition matched"):
        await run(step("fail"))


async def test_a_step_whose_condition_does_not_match_passes_the_message_unchanged() -> None:
    failing = step("fail", {"message": "boom"}, field="kind", operator="equals", value="refund")
    # `id` alone would be the envelope's message id: the payload's is `payload.id`.
    mapping = step(
        "map", {"fields": {"only": "this"}}, field="payload.id", operator="equals", value=8
    )
    assert await run(failing, mapping) == [ORDER]
    assert await run(mapping, payload={**ORDER, "id": 8}) == [{"only": "this"}]
    with pytest.raises(AdapterFailure, match="boom"):
        await run(failing, payload={**ORDER, "kind": "refund"})


async def test_steps_run_in_order_each_on_the_previous_output() -> None:
    outputs = await run(
        step("map", {"fields": {"n": "{payload.id}", "name": "{customer.name}"}}),
        step("filter", field="n", operator="gte", value=7),
        step("map", {"fields": {"label": "{payload.name}#{payload.n}"}}),
    )
    assert outputs == [{"label": "Ada#7"}]


async def test_a_type_this_runtime_lacks_fails_the_message() -> None:
    with pytest.raises(AdapterFailure, match="'upper' is not registered") as raised:
        await run(step("pass_through"), step("upper"))
    assert raised.value.step == 1


# --- plug-ins -------------------------------------------------------------------------------


async def test_entry_point_plugins_are_registered_and_run() -> None:
    registry, runtime = load_adapter_registry(
        [plugin("repeat", "Repeat"), plugin("upper", "upper")], strict=True
    )
    assert {"repeat", "upper"} <= set(registry) and set(BUILTIN_ADAPTERS) <= set(registry)
    outputs = await runtime.run_steps(
        [
            AdapterStep(type="upper", config={"field": "kind"}),
            AdapterStep(type="repeat", config={"times": 3}),
            # a later step runs once per output of the step before it
            AdapterStep(
                type="filter",
                condition=Condition(field="copy", operator=ConditionOperator.NOT_EQUALS, value=1),
            ),
        ],
        {"kind": "order"},
        CONTEXT,
    )
    assert outputs == [
        {"kind": "ORDER", "copy": 0, "by": "enrich"},
        {"kind": "ORDER", "copy": 2, "by": "enrich"},
    ]


def test_a_config_naming_a_plugin_validates_only_where_it_is_installed() -> None:
    document = {
        "version": "1",
        "routes": {
            "a": {
                "name": "A",
                "inbound": {"topic": "t.in"},
                "adapters": [{"type": "repeat", "config": {"times": -1}}],
                "error_handling": {"dead_letter_topic": "t.dlq"},
                "outbound": [],
            }
        },
        "init_message": {"route": "a", "payload": {}},
    }
    with_plugin, _ = load_adapter_registry([plugin("repeat", "Repeat")], strict=True)
    without, _ = load_adapter_registry([])
    codes_with = {i.code for i in validate_config(document, with_plugin)[0].issues}
    codes_without = {i.code for i in validate_config(document, without)[0].issues}
    assert "E303" in codes_with  # the plug-in's own config check ran
    assert "E103" in codes_without and "E303" not in codes_without


async def test_a_plugin_that_raises_fails_the_message_with_its_error() -> None:
    _, runtime = load_adapter_registry([plugin("crashes", "Crashes")], strict=True)
    with pytest.raises(AdapterFailure, match="'crashes' raised ZeroDivisionError: division"):
        await runtime.run_steps([AdapterStep(type="crashes")], {}, CONTEXT)


@pytest.mark.parametrize(
    ("name", "target", "problem"),
    [
        ("not_a_list", "NotAList", "returned dict, not a list of JSON objects"),
        ("not_json", "NotJson", "returned a payload that is not JSON"),
    ],
)
async def test_a_plugin_returning_something_else_fails_the_message(
    name: str, target: str, problem: str
) -> None:
    _, runtime = load_adapter_registry([plugin(name, target)], strict=True)
    with pytest.raises(AdapterFailure, match=problem):
        await runtime.run_steps([AdapterStep(type=name)], {}, CONTEXT)


@pytest.mark.parametrize(
    ("entry_point", "problem"),
    [
        (
            EntryPoint(
                "gone", "tests.runtimes.orchestrator.no_such_module:Gone", ENTRY_POINT_GROUP
            ),
            "failed to load: ModuleNotFoundError",
        ),
        (plugin("no_spec", "NoSpec"), "has no `spec`"),
        (plugin("sync_apply", "SyncApply"), "has no `async def apply"),
        (plugin("other_name", "Repeat"), "names its spec 'repeat'"),
        (plugin("map", "ReplacesMap"), "would replace a built-in"),
    ],
)
def test_a_broken_plugin_is_refused_with_the_reason(
    entry_point: EntryPoint, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(AdapterPluginError, match=problem):
        load_adapter_registry([entry_point], strict=True)
    # Not strict: logged and left out; the others still load.
    with caplog.at_level(logging.ERROR, logger="services.runtimes.routes.adapters"):
        registry, runtime = load_adapter_registry([entry_point, plugin("upper", "upper")])
    assert problem.split("`")[0] in caplog.text
    assert "upper" in registry and "upper" in runtime
    if entry_point.name == "map":
        assert registry["map"] is BUILTIN_ADAPTERS["map"]
    else:
        assert entry_point.name not in registry


def test_a_plugin_installed_twice_is_refused() -> None:
    with pytest.raises(AdapterPluginError, match="'upper' is installed twice"):
        load_adapter_registry([plugin("upper", "upper"), plugin("upper", "upper")], strict=True)


def test_installed_entry_points_are_read_when_none_are_given() -> None:
    # This repository installs no adapter plug-ins: exactly the built-ins.
    registry, runtime = load_adapter_registry()
    assert set(registry) == set(runtime) == set(BUILTIN_ADAPTERS)
