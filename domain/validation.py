"""The config validator: text or mapping in, seed 004's report (and the typed document) out.

Three stages, each run only when the one before found no fatal problem: parse (E001,
E002; duplicate keys E009 are reported but not fatal), structure (pydantic errors of
ConfigDocument mapped to stable codes), semantics (validation_rules). Pure: nothing a
config names is ever imported; adapter types come from the registry passed in.
"""

from __future__ import annotations

import json
import math
import types
from collections.abc import Mapping
from datetime import date
from typing import Any, Union, get_args, get_origin

import orjson
import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from contracts.config_document import ConditionOperator, ConfigDocument
from contracts.validation import ValidationIssue, ValidationReport
from domain.adapters import AdapterRegistry
from domain.validation_rules import (
    ROOT_PATH,
    VALIDATION_CODES,
    check_document,
    did_you_mean,
    format_path,
    issue,
    one_of,
)

__all__ = ["VALIDATION_CODES", "parse_document", "validate_config"]

Loc = tuple[str | int, ...]


def validate_config(
    document: Mapping[str, Any] | str, registry: AdapterRegistry
) -> tuple[ValidationReport, ConfigDocument | None]:
    """Validate a config given as YAML/JSON text or an already parsed mapping.

    The typed document is returned only when the report is valid (warnings allowed).
    """
    data, issues = parse_document(document)
    if data is None:
        return ValidationReport.of(issues), None
    try:
        doc = ConfigDocument.model_validate(data)
    except ValidationError as exc:
        issues += [_structure_issue(error) for error in exc.errors(include_url=False)]
        return ValidationReport.of(issues), None
    issues += check_document(doc, registry)
    report = ValidationReport.of(issues)
    return report, doc if report.is_valid else None


# ---- parsing ---------------------------------------------------------------------------


def parse_document(document: object) -> tuple[dict[str, Any] | None, list[ValidationIssue]]:
    """Text or mapping -> mapping plus duplicate-key issues; None when it cannot go on."""
    if not isinstance(document, Mapping | str):
        return None, [_not_a_mapping(document)]
    try:
        if isinstance(document, Mapping):
            return _json_data(dict(document), ()), []
        data, duplicates = _parse_text(document)
        data = _json_data(data, ())
    except _ParseError as exc:
        return None, [
            issue(
                "E001",
                ROOT_PATH,
                str(exc),
                "Fix the syntax at the position given; JSON text must be one object, YAML "
                "text one document.",
            )
        ]
    if not isinstance(data, dict):
        return None, [_not_a_mapping(data)]
    return data, [
        issue(
            "E009",
            format_path(loc),
            f"Key '{loc[-1]}' appears more than once in "
            f"{format_path(loc[:-1]) if len(loc) > 1 else 'the document root'}; "
            "only the last one would count",
            "Keep one entry per key (route ids must be unique).",
        )
        for loc in duplicates
    ]


class _ParseError(ValueError):
    pass


def _parse_text(text: str) -> tuple[object, list[Loc]]:
    try:
        return _parse_any_text(text)
    except RecursionError:
        # Nesting deeper than the parsers recurse, or a YAML alias inside the node it
        # names (`a: &x [*x]`, a structure that contains itself).
        raise _ParseError(
            "The document is nested too deeply, or a YAML alias refers to a node that contains it"
        ) from None


def _parse_any_text(text: str) -> tuple[object, list[Loc]]:
    if text.lstrip().startswith(("{", "[")):
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            # Text that looks like JSON is held to JSON: falling back to YAML would give
            # JSON mistakes a silent YAML meaning (`"routes": }` would read as null).
            raise _ParseError(f"Invalid JSON: {exc}") from exc
        # orjson finds the errors; stdlib json's pairs hook finds duplicate keys.
        tree = json.loads(text, object_pairs_hook=_Pairs)
        duplicates: list[Loc] = []
        return _unpair(tree, (), duplicates), duplicates
    return _parse_yaml(text)


MAX_DOCUMENT_DEPTH = 64
_INT_RANGE = (-(2**63), 2**64 - 1)  # what orjson, which stores the document, writes


def _json_data(value: Any, loc: Loc) -> Any:
    """`value` as JSON data, which is what a config is stored as: YAML's dates and times
    become their ISO text; what JSON cannot carry (YAML's binary, sets, non-finite
    numbers, integers beyond 64 bits) and nesting deeper than MAX_DOCUMENT_DEPTH (the
    serializers stop at a few hundred levels) are refused."""
    if len(loc) > MAX_DOCUMENT_DEPTH:
        raise _ParseError(
            f"The document is nested deeper than {MAX_DOCUMENT_DEPTH} levels at "
            f"{format_path(loc[:MAX_DOCUMENT_DEPTH])}"
        )
    if isinstance(value, dict):
        return {
            k: _json_data(v, (*loc, k if isinstance(k, str | int) else str(k)))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_json_data(item, (*loc, i)) for i, item in enumerate(value)]
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int) and _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    where = format_path(loc) if loc else "the document root"
    raise _ParseError(f"The value at {where} is not JSON data: {_kind(value)} {value!r:.40}")


class _Pairs(list[tuple[str, Any]]):
    """A JSON object kept as its key/value pairs so repeated keys stay visible."""


def _unpair(tree: Any, loc: Loc, duplicates: list[Loc]) -> Any:
    if isinstance(tree, _Pairs):
        out: dict[str, Any] = {}
        for key, value in tree:
            if key in out:
                duplicates.append((*loc, key))
            out[key] = _unpair(value, (*loc, key), duplicates)
        return out
    if isinstance(tree, list):
        return [_unpair(item, (*loc, i), duplicates) for i, item in enumerate(tree)]
    return tree


MAX_YAML_NODES = 100_000


def _parse_yaml(text: str) -> tuple[object, list[Loc]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _ParseError(f"Invalid YAML{where}: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise _ParseError(f"Invalid YAML: {exc}") from exc
    duplicates: list[Loc] = []
    if node is not None:
        size = _expanded_size(node, {})
        if size > MAX_YAML_NODES:
            # Aliases of aliases ("billion laughs") expand exponentially: a few hundred
            # bytes would otherwise cost minutes of every reader's CPU.
            raise _ParseError(
                f"Invalid YAML: aliases expand the document to {size} nodes "
                f"(at most {MAX_YAML_NODES})"
            )
        _yaml_duplicates(node, (), duplicates)
    return data, duplicates


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes in the document once every alias is expanded; linear in the composed graph
    (an alias is the same node object, counted once and reused)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, memo) for item in node.value)
    memo[id(node)] = size
    return size


def _yaml_duplicates(node: yaml.Node, loc: Loc, duplicates: list[Loc]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if isinstance(key_node, yaml.ScalarNode) and key != "<<":
                if key in seen:
                    duplicates.append((*loc, key))
                seen.add(key)
            _yaml_duplicates(value_node, (*loc, key), duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _yaml_duplicates(item, (*loc, i), duplicates)


def _not_a_mapping(value: object) -> ValidationIssue:
    return issue(
        "E002",
        ROOT_PATH,
        f"The config document must be a mapping, got {_kind(value)}",
        "Start the document with the keys version, routes and init_message.",
    )


# ---- structure -------------------------------------------------------------------------

_RANGE_CODES = {
    "concurrency": "E401",
    "prefetch": "E402",
    "max_retries": "E403",
    "retry_delay_seconds": "E404",
}
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def _structure_issue(error: ErrorDetails) -> ValidationIssue:
    loc: Loc = tuple(error["loc"])
    kind, value = error["type"], error.get("input")
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        return issue(
            "E004",
            format_path(loc),
            f"Key {loc[-1]!r} must be a string, got {_kind(value)}",
            "Quote the key so it is read as a string.",
        )
    path = format_path(loc)
    parent = format_path(loc[:-1]) if len(loc) > 1 else "the document root"
    if kind == "missing":
        return issue(
            "E003",
            path,
            f"Required key '{loc[-1]}' is missing",
            f"Add '{loc[-1]}' under {parent}.",
        )
    if kind == "extra_forbidden":
        allowed = list(_model_at(loc[:-1]).model_fields)
        key = str(loc[-1])
        return issue(
            "E005" if len(loc) == 1 else "E006",
            path,
            f"Unknown key '{key}' in {parent}",
            f"Remove it; allowed keys are: {one_of(allowed)}." + did_you_mean(key, allowed),
        )
    if kind == "string_too_short":
        return issue("E008", path, f"'{path}' must not be empty", f"Give '{path}' a value.")
    if kind == "enum" and loc[-1] == "operator":
        operators = [op.value for op in ConditionOperator]
        return issue(
            "E104",
            path,
            f"Unknown condition operator '{value}'",
            f"Use one of: {one_of(operators)}." + did_you_mean(str(value), operators),
        )
    if kind in {"greater_than_equal", "greater_than"} and loc[-1] in _RANGE_CODES:
        bound = next(iter((error.get("ctx") or {}).values()), "")
        return issue(
            _RANGE_CODES[str(loc[-1])],
            path,
            f"'{loc[-1]}' is {value}; it must be at least {bound}",
            f"Set '{loc[-1]}' to {bound} or more.",
        )
    expected = _EXPECTED.get(kind, "a value of the documented type")
    hint = (
        " Quote it so it is read as a string."
        if expected == "a string" and isinstance(value, int | float | bool)
        else ""
    )
    return issue(
        "E004",
        path,
        f"'{path}' must be {expected}, got {_kind(value)}",
        f"Give '{path}' {expected}.{hint}",
    )


def _model_at(loc: Loc) -> type[BaseModel]:
    """The model class describing the section at `loc` (extra keys always sit in one)."""
    current: Any = ConfigDocument
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            current = current.model_fields[str(part)].annotation
        else:  # list[X] or dict[str, X]: the element type
            current = get_args(current)[-1]
    current = _unwrap(current)
    assert isinstance(current, type) and issubclass(current, BaseModel)
    return current


def _unwrap(annotation: Any) -> Any:
    if get_origin(annotation) in {Union, types.UnionType}:
        return next(arg for arg in get_args(annotation) if arg is not type(None))
    return annotation


_KINDS: dict[type, str] = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)
