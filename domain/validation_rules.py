"""The validation code table and the semantic rules run on a structurally valid document.

`VALIDATION_CODES` is the stable table; docs/validation-codes.md documents it and a test
keeps the two equal. Codes are never reused for another meaning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

import orjson

from contracts.config_document import Condition, ConditionOperator, ConfigDocument, RouteSpec
from contracts.validation import Severity, ValidationIssue
from domain.adapters import AdapterRegistry


@dataclass(frozen=True)
class CodeInfo:
    severity: Severity
    title: str


E, W = Severity.ERROR, Severity.WARNING

VALIDATION_CODES: dict[str, CodeInfo] = {
    # E001-E099: parsing and structure
    "E001": CodeInfo(E, "Document text is not valid YAML or JSON"),
    "E002": CodeInfo(E, "Document is not a mapping"),
    "E003": CodeInfo(E, "Required key is missing"),
    "E004": CodeInfo(E, "Value has the wrong type"),
    "E005": CodeInfo(E, "Unknown top-level key"),
    "E006": CodeInfo(E, "Unknown key in a section"),
    "E008": CodeInfo(E, "Value must not be empty"),
    "E009": CodeInfo(E, "Key appears more than once in a mapping"),
    "E010": CodeInfo(E, "Invalid Kafka topic name"),
    "E011": CodeInfo(E, "Invalid route id"),
    # E1xx: adapters and conditions
    "E103": CodeInfo(E, "Adapter type is not registered"),
    "E104": CodeInfo(E, "Unknown condition operator"),
    "E105": CodeInfo(E, "Adapter type requires a condition"),
    "E106": CodeInfo(E, "Condition value does not suit its operator"),
    # E2xx: routes and the init message
    "E201": CodeInfo(E, "Route name is used by more than one route"),
    "E202": CodeInfo(E, "init_message names an unknown route"),
    # E3xx: adapter config
    "E301": CodeInfo(E, "Unknown adapter config field"),
    "E302": CodeInfo(E, "Missing required adapter config field"),
    "E303": CodeInfo(E, "Invalid adapter config value"),
    # E4xx: runtime settings
    "E401": CodeInfo(E, "inbound.concurrency is less than 1"),
    "E402": CodeInfo(E, "inbound.prefetch is less than 1"),
    "E403": CodeInfo(E, "error_handling.max_retries is negative"),
    "E404": CodeInfo(E, "error_handling.retry_delay_seconds is negative"),
    # W5xx: warnings (the config is still valid)
    "W501": CodeInfo(W, "Route is unreachable"),
    "W502": CodeInfo(W, "Route has no dead-letter topic"),
    "W503": CodeInfo(W, "Routes form a cycle through their topics"),
}

ROOT_PATH = "$"
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}\Z")
_ROUTE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}\Z")


def issue(code: str, path: str, message: str, suggestion: str) -> ValidationIssue:
    return ValidationIssue(
        severity=VALIDATION_CODES[code].severity,
        code=code,
        path=path,
        message=message,
        suggestion=suggestion,
    )


def format_path(loc: Sequence[str | int]) -> str:
    """`("routes", "fetch", "adapters", 1)` -> `routes.fetch.adapters[1]`; odd keys quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{orjson.dumps(part).decode()}]"
    return out or ROOT_PATH


def did_you_mean(word: str, options: Sequence[str]) -> str:
    match = get_close_matches(word, sorted(options), n=1)
    return f" Did you mean '{match[0]}'?" if match else ""


def one_of(options: Sequence[str]) -> str:
    return ", ".join(sorted(options)) or "(none)"


def check_document(doc: ConfigDocument, registry: AdapterRegistry) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    first_route_by_name: dict[str, str] = {}
    for route_id, route in doc.routes.items():
        at = ("routes", route_id)
        if not _ROUTE_ID.match(route_id):
            issues.append(
                issue(
                    "E011",
                    format_path(at),
                    f"Route id '{route_id}' is not a valid route id",
                    "Use 1-100 letters, digits, '_' or '-', starting with a letter or digit "
                    "(route ids appear in storage paths and message headers).",
                )
            )
        if route.name in first_route_by_name:
            issues.append(
                issue(
                    "E201",
                    format_path((*at, "name")),
                    f"Route name '{route.name}' is already used by route "
                    f"'{first_route_by_name[route.name]}'",
                    "Give every route a distinct name.",
                )
            )
        else:
            first_route_by_name[route.name] = route_id
        issues += _check_topics(at, route)
        issues += _check_adapters(at, route, registry)
    issues += _check_init_route(doc)
    issues += _check_dead_letters(doc)
    issues += _check_reachability(doc)
    issues += _check_cycles(doc)
    return issues


def _check_topics(at: tuple[str, ...], route: RouteSpec) -> list[ValidationIssue]:
    named: list[tuple[tuple[str | int, ...], str]] = [
        ((*at, "inbound", "topic"), route.inbound.topic)
    ]
    named += [((*at, "outbound", i), topic) for i, topic in enumerate(route.outbound)]
    if route.error_handling.dead_letter_topic is not None:
        named.append(
            ((*at, "error_handling", "dead_letter_topic"), route.error_handling.dead_letter_topic)
        )
    return [
        issue(
            "E010",
            format_path(loc),
            f"'{topic}' is not a valid Kafka topic name",
            "Use 1-249 characters from letters, digits, '.', '_' and '-'; not '.' or '..' and "
            "not starting with '__' (reserved for Kafka's internal topics).",
        )
        for loc, topic in named
        if not _TOPIC.match(topic) or topic in {".", ".."} or topic.startswith("__")
    ]


def _check_adapters(
    at: tuple[str, ...], route: RouteSpec, registry: AdapterRegistry
) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    for index, step in enumerate(route.adapters):
        loc: tuple[str | int, ...] = (*at, "adapters", index)
        if step.condition is not None:
            issues += _check_condition((*loc, "condition"), step.condition)
        spec = registry.get(step.type)
        if spec is None:
            issues.append(
                issue(
                    "E103",
                    format_path((*loc, "type")),
                    f"Adapter type '{step.type}' is not registered",
                    f"Use one of the registered adapter types: {one_of(list(registry))}."
                    + did_you_mean(step.type, list(registry)),
                )
            )
            continue
        for field in sorted(set(step.config) - spec.fields):
            issues.append(
                issue(
                    "E301",
                    format_path((*loc, "config", field)),
                    f"Adapter '{step.type}' has no config field '{field}'",
                    f"Remove it; '{step.type}' accepts: {one_of(list(spec.fields))}."
                    + did_you_mean(field, list(spec.fields)),
                )
            )
        for field in sorted(spec.required - set(step.config)):
            issues.append(
                issue(
                    "E302",
                    format_path((*loc, "config", field)),
                    f"Adapter '{step.type}' requires config field '{field}'",
                    f"Add '{field}' to the adapter's config.",
                )
            )
        if spec.check is not None:
            for field, problem in spec.check(step.config):
                issues.append(
                    issue(
                        "E303",
                        format_path((*loc, "config", *field.split("."))),
                        f"Adapter '{step.type}' config field '{field}' {problem}",
                        f"Correct '{field}'. {spec.name}: {spec.description}",
                    )
                )
        if spec.requires_condition and step.condition is None:
            issues.append(
                issue(
                    "E105",
                    format_path((*loc, "condition")),
                    f"Adapter '{step.type}' needs a condition and has none",
                    "Add condition: {field, operator, value} saying which messages pass.",
                )
            )
    return issues


_VALUE_RULES: dict[ConditionOperator, tuple[str, type | tuple[type, ...]]] = {
    ConditionOperator.IN: ("a list", list),
    ConditionOperator.NOT_IN: ("a list", list),
    ConditionOperator.MATCHES: ("a regular expression string", str),
    ConditionOperator.EXISTS: ("true or false", bool),
    ConditionOperator.GT: ("a number", (int, float)),
    ConditionOperator.GTE: ("a number", (int, float)),
    ConditionOperator.LT: ("a number", (int, float)),
    ConditionOperator.LTE: ("a number", (int, float)),
}


def _check_condition(loc: tuple[str | int, ...], condition: Condition) -> list[ValidationIssue]:
    rule = _VALUE_RULES.get(condition.operator)
    if rule is None:
        return []
    wanted, types = rule
    value: Any = condition.value
    # bool is an int subclass; a number comparison with true/false is a mistake.
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in _as_tuple(types))
    problem = "" if ok else f"must be {wanted}"
    if ok and condition.operator is ConditionOperator.MATCHES:
        try:
            re.compile(value)
        except re.error as exc:
            problem = f"is not a valid regular expression ({exc})"
    if not problem:
        return []
    return [
        issue(
            "E106",
            format_path((*loc, "value")),
            f"The value of a condition with operator '{condition.operator.value}' {problem}",
            f"Give '{condition.operator.value}' a value that is {wanted}.",
        )
    ]


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _check_init_route(doc: ConfigDocument) -> list[ValidationIssue]:
    route = doc.init_message.route
    if route in doc.routes:
        return []
    return [
        issue(
            "E202",
            "init_message.route",
            f"init_message names route '{route}', which is not defined",
            f"Name one of the routes: {one_of(list(doc.routes))}."
            + did_you_mean(route, list(doc.routes)),
        )
    ]


def _check_dead_letters(doc: ConfigDocument) -> list[ValidationIssue]:
    return [
        issue(
            "W502",
            format_path(("routes", route_id, "error_handling", "dead_letter_topic")),
            f"Route '{route_id}' has no dead-letter topic: a message that fails after its "
            "retries is lost",
            f"Set error_handling.dead_letter_topic, e.g. '{route.inbound.topic}.dlq'.",
        )
        for route_id, route in doc.routes.items()
        if route.error_handling.dead_letter_topic is None
    ]


def _successors(doc: ConfigDocument, *, with_dead_letters: bool) -> dict[str, list[str]]:
    """Route -> routes whose inbound topic it writes, in document order."""
    readers: dict[str, list[str]] = {}
    for route_id, route in doc.routes.items():
        readers.setdefault(route.inbound.topic, []).append(route_id)
    graph: dict[str, list[str]] = {}
    for route_id, route in doc.routes.items():
        topics = list(route.outbound)
        if with_dead_letters and route.error_handling.dead_letter_topic is not None:
            topics.append(route.error_handling.dead_letter_topic)
        targets = [r for topic in topics for r in readers.get(topic, [])]
        graph[route_id] = list(dict.fromkeys(targets))
    return graph


def _reach(graph: dict[str, list[str]], start: str) -> set[str]:
    """Routes reachable from `start` in one or more steps."""
    seen: set[str] = set()
    stack = list(graph[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(graph[node])
    return seen


def _check_reachability(doc: ConfigDocument) -> list[ValidationIssue]:
    start = doc.init_message.route
    if start not in doc.routes:
        return []  # E202 already; every route would look unreachable
    # A failed message reaches a route that reads the dead-letter topic, so count it.
    reached = _reach(_successors(doc, with_dead_letters=True), start) | {start}
    return [
        issue(
            "W501",
            format_path(("routes", route_id, "inbound", "topic")),
            f"Route '{route_id}' is unreachable: no route writes its inbound topic "
            f"'{route.inbound.topic}' on a path from the init route '{start}'",
            "Add the topic to an upstream route's outbound list, or remove the route if only "
            "an outside producer or a replay feeds it on purpose.",
        )
        for route_id, route in doc.routes.items()
        if route_id not in reached
    ]


def _check_cycles(doc: ConfigDocument) -> list[ValidationIssue]:
    """One warning per strongly connected group of routes (outbound edges only)."""
    graph = _successors(doc, with_dead_letters=False)
    reach = {route_id: _reach(graph, route_id) for route_id in graph}
    issues: list[ValidationIssue] = []
    reported: set[str] = set()
    for route_id in graph:
        if route_id in reported or route_id not in reach[route_id]:
            continue
        members = [
            r for r in graph if r == route_id or (r in reach[route_id] and route_id in reach[r])
        ]
        reported.update(members)
        issues.append(
            issue(
                "W503",
                format_path(("routes", route_id, "outbound")),
                f"Routes {', '.join(repr(m) for m in members)} form a cycle: each one's "
                "outbound topics lead back to it",
                "Make sure a filter or condition ends the loop (otherwise the execution never "
                "drains); remove the loop if it is not intended.",
            )
        )
    return issues
