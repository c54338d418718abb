"""Command bodies for the fuzzers, derived from every model of `contracts.COMMANDS`.

- `bodies(model)`: what the model's JSON Schema describes, nothing else assumed;
- `mutated_bodies(model)`: a body of the model broken one way (a field missing, an extra
  field, a value of the wrong type, a huge or odd string, not an object at all);
- `pooled_bodies(model)`: schema bodies whose names and ids come from small pools, so a
  list of commands meets the same pipelines, configs and executions (the decider's
  fuzzer). A field with `CURRENT` is filled in just before the command is sent with what
  the store holds (the pipeline's id, its version): a reconciler step or an
  orchestrator decision can then be on time, which a random UUID never is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, Final
from uuid import UUID

from hypothesis import strategies as st

from contracts import Command
from contracts.commands import COMMANDS
from tests.domain.config_documents import FETCH_INIT, MAP_STEP, one_route_document
from tests.fuzz.json_schema import DEEP_VALUES, JSON_VALUES, Overrides, from_schema

MODELS: Final = tuple(COMMANDS.values())
CURRENT: Final = "@current"  # "what the store holds now", filled in at send time

PIPELINE_NAMES: Final = ("p1", "p2")
CONFIG_IDS: Final = (UUID(int=0xC1), UUID(int=0xC2))
EXECUTION_IDS: Final = (UUID(int=0xE1), UUID(int=0xE2), UUID(int=0xE3))
DEPLOYMENT_IDS: Final = (UUID(int=0xD1), UUID(int=0xD2))
ROUTES: Final = ("fetch", "fetch/1", "nowhere")


def _pool(values: tuple[Any, ...]) -> st.SearchStrategy[str]:
    return st.sampled_from([str(v) for v in values])


# Up to the end of time: a run created in year 9999 is never due (contracts.run_views.deadline).
_LATEST: Final = datetime.max
_AWARE_TIMES: Final = st.datetimes(max_value=_LATEST, timezones=st.just(UTC)).map(
    datetime.isoformat
)
# YAML the parser must refuse, or keep as JSON data: aliases inside themselves, nesting
# deeper than the parsers recurse, values JSON has no word for, dates.
ODD_YAML: Final = (
    "a: &a [*a]",
    "&a {x: *a}",
    "x: " + "[" * 1_500 + "]" * 1_500,
    "version: '1'\nroutes: {}\ninit_message: {route: r, payload: {b: !!binary aGk=}}",
    "version: '1'\nroutes: {}\ninit_message: {route: r, payload: {n: .nan, s: !!set {a}}}",
    "version: '1'\nroutes: {}\ninit_message: {route: r, payload: {big: 1234567890123456789012345}}",
    "version: '1'\nroutes: {}\ninit_message: {route: r, payload: {when: 2020-01-01, 1.5: x}}",
    "{1: 2}",
    "? [a, b]\n: c",
)
# Mostly valid documents (so configs exist and runs start), sometimes a broken one.
_DOCUMENTS: Final = st.one_of(
    st.just(one_route_document([MAP_STEP], init_message=FETCH_INIT)),
    st.just(one_route_document([{"type": "no-such-adapter"}])),
    st.just("version: '1.0'\nroutes: {}\ninit_message: {route: fetch}\n"),
    st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3),
    st.text(max_size=30),
    st.sampled_from(ODD_YAML),
    DEEP_VALUES.map(lambda deep: {**one_route_document([MAP_STEP]), "x": deep}),
)

POOLS: Final[Overrides] = {
    "name": _pool(PIPELINE_NAMES),
    "pipeline_name": _pool(PIPELINE_NAMES),
    "config_id": _pool(CONFIG_IDS),
    "execution_id": _pool(EXECUTION_IDS),
    "run_id": _pool(EXECUTION_IDS),
    "parent": _pool(EXECUTION_IDS),
    "parent_execution_id": _pool(EXECUTION_IDS) | st.none(),
    "deployment_id": _pool(DEPLOYMENT_IDS) | st.none(),
    "document": _DOCUMENTS,
    "route": st.sampled_from(ROUTES),
    "from_stage": st.sampled_from(ROUTES) | st.none(),
    "to_route": st.sampled_from(ROUTES) | st.none(),
    "expected_version": st.just(CURRENT) | st.none() | st.integers(1, 4),
    # Outside the schema (no offset), which the decoder takes for a plain datetime field.
    "at": st.none() | st.datetimes(max_value=_LATEST).map(datetime.isoformat) | _AWARE_TIMES,
    "event_time": _AWARE_TIMES,
    "nominal_start_time": _AWARE_TIMES | st.none(),
    "nominal_end_time": _AWARE_TIMES | st.none(),
    "program_code": st.none() | st.sampled_from(ODD_YAML) | st.text(max_size=30),
}
# Per model: a field whose meaning differs from the same name elsewhere.
_MODEL_POOLS: Final[dict[str, Overrides]] = {
    # A pipeline's id or its name.
    "CreateRun": {"pipeline_id": _pool(PIPELINE_NAMES) | st.uuids().map(str)},
    "UpdateRunStatus": {"pipeline_id": _pool(PIPELINE_NAMES) | st.none()},
    "DeleteRun": {"pipeline_id": _pool(PIPELINE_NAMES) | st.none()},
    # The id of the pipeline the step was decided on.
    "ReconcilePipeline": {"pipeline_id": st.just(CURRENT) | st.uuids().map(str)},
}


@cache
def bodies(model: type[Command]) -> st.SearchStrategy[dict[str, Any]]:
    return from_schema(model.model_json_schema())


@cache
def pooled_bodies(model: type[Command]) -> st.SearchStrategy[dict[str, Any]]:
    name = model.command_type()
    return from_schema(model.model_json_schema(), {**POOLS, **_MODEL_POOLS.get(name, {})})


def _without_one(body: dict[str, Any]) -> st.SearchStrategy[Any]:
    if not body:
        return st.just(body)
    return st.sampled_from(sorted(body)).map(lambda k: {n: v for n, v in body.items() if n != k})


def _with_extra(body: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.tuples(st.text(max_size=10), JSON_VALUES).map(lambda kv: {**body, kv[0]: kv[1]})


def _wrong_value(body: dict[str, Any]) -> st.SearchStrategy[Any]:
    if not body:
        return st.just(body)
    wrong = JSON_VALUES | st.integers()  # integers beyond 64 bits too: orjson reads a float
    return st.tuples(st.sampled_from(sorted(body)), wrong).map(lambda kv: {**body, kv[0]: kv[1]})


_ODD: Final = st.sampled_from(
    ["\x00", "\u202e", "\ufeff", "\U0001f4a9", "e\u0301", "\u00df", "\uffff", "\\", '"', "\n"]
)
# Huge without drawing every character: one drawn unit repeated.
HUGE_TEXT: Final = st.tuples(_ODD | st.text(min_size=1, max_size=3), st.integers(1, 70_000)).map(
    lambda unit_times: unit_times[0] * unit_times[1]
)


def _huge_or_odd(body: dict[str, Any]) -> st.SearchStrategy[Any]:
    keys = sorted(body) or ["name"]
    return st.tuples(st.sampled_from(keys), HUGE_TEXT | st.text()).map(
        lambda kv: {**body, kv[0]: kv[1]}
    )


def _mutations(body: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        _without_one(body),
        _with_extra(body),
        _wrong_value(body),
        _huge_or_odd(body),
        JSON_VALUES,  # not an object at all, mostly
    )


@cache
def mutated_bodies(model: type[Command]) -> st.SearchStrategy[Any]:
    return bodies(model).flatmap(_mutations)


def any_body(model: type[Command]) -> st.SearchStrategy[Any]:
    """A body of `model` as the schema says, or broken one way."""
    return bodies(model) | mutated_bodies(model)
