"""Hypothesis strategies from the JSON Schema pydantic writes for a model: the keywords the
command models use (`$ref`/`$defs`, `anyOf`, `enum`, `type`, string `format` uuid and
date-time, `pattern`, length and size bounds, `minimum`, `properties`/`required`,
`additionalProperties`), so every command model gets its strategy from its schema and a
new field or a new command is fuzzed without a line here.

What a schema does not say (a model validator, e.g. ReplayExecution's "exactly one of
from_path and messages") is generated anyway: the decoder must refuse it as a schema
violation, which is one more path under test.

`overrides` replaces the strategy of a property by its name wherever it appears (the
fuzzers draw ids and names from small pools, so generated commands meet each other's
aggregates).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, timedelta, timezone
from typing import Any, Final

from hypothesis import strategies as st

JsonSchema = Mapping[str, Any]
Overrides = Mapping[str, st.SearchStrategy[Any]]

# Any JSON scalar; odd text included (control characters, NUL, astral planes: the default
# alphabet), surrogates excluded because no JSON encoder writes them.
JSON_SCALARS: Final = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # what orjson writes; beyond: tests.fuzz.commands
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)


def nested(depth: int) -> dict[str, Any]:
    """`{"a": {"a": ... 1}}`, `depth` objects deep (built in a loop: no recursion)."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return dict(value)


def depth(value: Any) -> int:
    """How deeply `value` nests (iterative: values here go deeper than Python recurses)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, level + 1) for child in children)
    return deepest


# Deeper than the serializers go (pydantic stops at a few hundred levels, orjson at 254),
# not as deep as the wire's parser refuses (orjson reads 1024).
DEEP_VALUES: Final = st.integers(200, 1_000).map(nested)
SHALLOW_VALUES: Final = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
JSON_VALUES: Final = st.one_of(SHALLOW_VALUES, SHALLOW_VALUES, SHALLOW_VALUES, DEEP_VALUES)
# JSON Schema's integers have no bounds, the parsers have: orjson reads an integer beyond
# 64 bits as a float, which pydantic refuses for an int field. Out-of-range integers are
# the mutations' (JSON_VALUES), not the schema's.
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1  # the largest integer orjson reads as one
# RFC 3339 times at any offset (a naive time is no RFC 3339 time: tests.fuzz.commands
# sends some anyway, as a producer may).
_OFFSETS: Final = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-(23 * 60 + 59), 23 * 60 + 59)
)
_TIMES: Final = st.datetimes(timezones=st.just(UTC) | _OFFSETS).map(lambda t: t.isoformat())
_FORMATS: Final[dict[str, st.SearchStrategy[str]]] = {
    "uuid": st.uuids().map(str),
    "date-time": _TIMES,
}


def from_schema(schema: JsonSchema, overrides: Overrides | None = None) -> st.SearchStrategy[Any]:
    """Values the schema describes (a model's `model_json_schema()`, `$defs` and all)."""
    return _Builder(schema, overrides or {}).build(schema)


class _Builder:
    def __init__(self, root: JsonSchema, overrides: Overrides) -> None:
        self.defs: Mapping[str, JsonSchema] = root.get("$defs", {})
        self.overrides = overrides

    def build(self, schema: JsonSchema) -> st.SearchStrategy[Any]:
        if "$ref" in schema:
            return self.build(self.defs[schema["$ref"].rsplit("/", 1)[-1]])
        if "anyOf" in schema:
            return st.one_of([self.build(option) for option in schema["anyOf"]])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        kind = schema.get("type")
        if kind is None:
            return JSON_VALUES
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "integer":
            low, high = schema.get("minimum", _INT_MIN), schema.get("maximum", _INT_MAX)
            return st.integers(min_value=low, max_value=high)
        if kind == "number":
            return st.floats(allow_nan=False, allow_infinity=False)
        if kind == "string":
            return self._string(schema)
        if kind == "array":
            items = self.build(schema.get("items", {}))
            return st.lists(items, max_size=min(schema.get("maxItems", 3), 3))
        if kind == "object":
            return self._object(schema)
        raise NotImplementedError(f"JSON Schema type {kind!r}")

    def _string(self, schema: JsonSchema) -> st.SearchStrategy[str]:
        if "format" in schema:
            return _FORMATS[schema["format"]]
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 12), 12)
        )

    def _object(self, schema: JsonSchema) -> st.SearchStrategy[dict[str, Any]]:
        properties: Mapping[str, JsonSchema] = schema.get("properties", {})
        if not properties:
            extra = schema.get("additionalProperties", True)
            values = JSON_VALUES if extra is True else self.build(extra)
            return st.dictionaries(st.text(max_size=8), values, max_size=3)
        required = set(schema.get("required", ()))
        strategies = {name: self._property(name, sub) for name, sub in properties.items()}
        return st.fixed_dictionaries(
            {name: s for name, s in strategies.items() if name in required},
            optional={name: s for name, s in strategies.items() if name not in required},
        )

    def _property(self, name: str, schema: JsonSchema) -> st.SearchStrategy[Any]:
        override = self.overrides.get(name)
        return override if override is not None else self.build(schema)
