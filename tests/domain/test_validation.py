"""Every validation code, triggered by the smallest change to a valid document."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from contracts.validation import Severity, ValidationReport
from domain.adapters import BUILTIN_ADAPTERS
from domain.validation import VALIDATION_CODES, validate_config

Doc = dict[str, Any]


def valid_document() -> Doc:
    """fetch -> shape -> sink, all reachable, dead letters set: no issues at all."""
    return {
        "version": "1.0",
        "routes": {
            "fetch": {
                "name": "Fetch",
                "inbound": {"topic": "fetch.in"},
                "adapters": [
                    {"type": "pass_through"},
                    {"type": "map", "config": {"fields": {"url": "{payload.url}"}}},
                ],
                "error_handling": {"dead_letter_topic": "fetch.dlq"},
                "outbound": ["shape.in"],
            },
            "shape": {
                "name": "Shape",
                "inbound": {"topic": "shape.in", "concurrency": 2},
                "adapters": [
                    {
                        "type": "filter",
                        "condition": {"field": "payload.ok", "operator": "equals", "value": True},
                    },
                    {"type": "delay", "config": {"seconds": 0.5}},
                ],
                "error_handling": {"dead_letter_topic": "shape.dlq"},
                "outbound": ["sink.in"],
            },
            "sink": {
                "name": "Sink",
                "inbound": {"topic": "sink.in"},
                "error_handling": {"dead_letter_topic": "sink.dlq"},
            },
        },
        "init_message": {"route": "fetch", "payload": {"url": "https://example.org"}},
    }


def run(doc: Doc | str) -> ValidationReport:
    report, _ = validate_config(doc, BUILTIN_ADAPTERS)
    return report


def test_the_valid_document_has_no_issues() -> None:
    report, parsed = validate_config(valid_document(), BUILTIN_ADAPTERS)
    assert report.issues == []
    assert report.is_valid
    assert parsed is not None
    # defaults are filled in: the typed document is the normalized one
    assert parsed.routes["fetch"].inbound.prefetch == 10
    assert parsed.routes["sink"].error_handling.max_retries == 3


def edit(change: Callable[[Doc], object]) -> Doc:
    doc = valid_document()
    change(doc)
    return doc


def route(doc: Doc, route_id: str) -> Doc:
    found: Doc = doc["routes"][route_id]
    return found


DUPLICATE_ROUTE_YAML = """
version: "1"
routes:
  a: {name: A, inbound: {topic: t}}
  a: {name: B, inbound: {topic: u}}
init_message: {route: a}
"""

CASES: list[tuple[str, Doc | str, str]] = [
    ("E001", '{"version": ', "$"),
    ("E001", "routes: [unclosed", "$"),
    ("E002", "- just\n- a list\n", "$"),
    ("E002", "", "$"),
    ("E003", edit(lambda d: route(d, "fetch").pop("inbound")), "routes.fetch.inbound"),
    ("E003", edit(lambda d: d.pop("init_message")), "init_message"),
    ("E004", edit(lambda d: d.update(version=1.0)), "version"),
    (
        "E004",
        edit(lambda d: route(d, "shape")["inbound"].update(concurrency="5")),
        "routes.shape.inbound.concurrency",
    ),
    ("E004", edit(lambda d: d.update(routes=[])), "routes"),
    ("E005", edit(lambda d: d.update(backpressure={})), "backpressure"),
    (
        "E006",
        edit(lambda d: route(d, "fetch")["inbound"].update(queue="/queue/x")),
        "routes.fetch.inbound.queue",
    ),
    ("E008", edit(lambda d: route(d, "fetch").update(name="")), "routes.fetch.name"),
    ("E009", DUPLICATE_ROUTE_YAML, "routes.a"),
    (
        "E009",
        '{"version": "1", "version": "2", "routes": {}, "init_message": {"route": "x"}}',
        "version",
    ),
    (
        "E010",
        edit(lambda d: route(d, "fetch").update(outbound=["shape.in", "bad topic"])),
        "routes.fetch.outbound[1]",
    ),
    (
        "E010",
        edit(lambda d: route(d, "sink")["inbound"].update(topic="__consumer_offsets")),
        "routes.sink.inbound.topic",
    ),
    ("E011", edit(lambda d: d["routes"].update({"a/b": d["routes"].pop("sink")})), 'routes["a/b"]'),
    (
        "E103",
        edit(lambda d: route(d, "fetch")["adapters"][0].update(type="html_to_markdown")),
        "routes.fetch.adapters[0].type",
    ),
    (
        "E104",
        edit(lambda d: route(d, "shape")["adapters"][0]["condition"].update(operator="eq")),
        "routes.shape.adapters[0].condition.operator",
    ),
    (
        "E105",
        edit(lambda d: route(d, "shape")["adapters"][0].pop("condition")),
        "routes.shape.adapters[0].condition",
    ),
    (
        "E106",
        edit(lambda d: route(d, "shape")["adapters"][0]["condition"].update(operator="in")),
        "routes.shape.adapters[0].condition.value",
    ),
    (
        "E106",
        edit(
            lambda d: route(d, "shape")["adapters"][0]["condition"].update(
                operator="matches", value="(unclosed"
            )
        ),
        "routes.shape.adapters[0].condition.value",
    ),
    ("E201", edit(lambda d: route(d, "sink").update(name="Fetch")), "routes.sink.name"),
    ("E202", edit(lambda d: d["init_message"].update(route="fetsch")), "init_message.route"),
    (
        "E301",
        edit(lambda d: route(d, "fetch")["adapters"][1]["config"].update(url="x")),
        "routes.fetch.adapters[1].config.url",
    ),
    (
        "E302",
        edit(lambda d: route(d, "shape")["adapters"][1].update(config={})),
        "routes.shape.adapters[1].config.seconds",
    ),
    (
        "E303",
        edit(lambda d: route(d, "shape")["adapters"][1].update(config={"seconds": -1})),
        "routes.shape.adapters[1].config.seconds",
    ),
    (
        "E303",
        edit(
            lambda d: route(d, "fetch")["adapters"][1].update(
                config={"fields": {"url": "{payload.url"}}
            )
        ),
        "routes.fetch.adapters[1].config.fields.url",
    ),
    (
        "E401",
        edit(lambda d: route(d, "shape")["inbound"].update(concurrency=0)),
        "routes.shape.inbound.concurrency",
    ),
    (
        "E402",
        edit(lambda d: route(d, "shape")["inbound"].update(prefetch=0)),
        "routes.shape.inbound.prefetch",
    ),
    (
        "E403",
        edit(lambda d: route(d, "sink")["error_handling"].update(max_retries=-1)),
        "routes.sink.error_handling.max_retries",
    ),
    (
        "E404",
        edit(lambda d: route(d, "sink")["error_handling"].update(retry_delay_seconds=-0.5)),
        "routes.sink.error_handling.retry_delay_seconds",
    ),
    ("W501", edit(lambda d: route(d, "shape").update(outbound=[])), "routes.sink.inbound.topic"),
    (
        "W502",
        edit(lambda d: route(d, "sink")["error_handling"].pop("dead_letter_topic")),
        "routes.sink.error_handling.dead_letter_topic",
    ),
    (
        "W503",
        edit(lambda d: route(d, "sink").update(outbound=["fetch.in"])),
        "routes.fetch.outbound",
    ),
    ("W503", edit(lambda d: route(d, "sink").update(outbound=["sink.in"])), "routes.sink.outbound"),
]


@pytest.mark.parametrize(("code", "document", "path"), CASES, ids=[c[0] for c in CASES])
def test_each_code_is_reported_at_its_path(code: str, document: Doc | str, path: str) -> None:
    report = run(copy.deepcopy(document))
    found = [(i.code, i.path) for i in report.issues]
    assert (code, path) in found, found
    severity = VALIDATION_CODES[code].severity
    assert report.is_valid is (severity is Severity.WARNING and report.error_count == 0)
    reported = next(i for i in report.issues if i.code == code)
    assert reported.severity is severity
    assert reported.message and reported.suggestion


def test_every_code_in_the_table_has_a_case() -> None:
    assert {code for code, _, _ in CASES} == set(VALIDATION_CODES)


def test_a_warning_only_document_is_valid_and_returns_the_typed_document() -> None:
    doc = edit(lambda d: route(d, "sink")["error_handling"].pop("dead_letter_topic"))
    report, parsed = validate_config(doc, BUILTIN_ADAPTERS)
    assert report.is_valid and report.warning_count == 1 and report.error_count == 0
    assert parsed is not None


def test_an_invalid_document_returns_no_typed_document() -> None:
    report, parsed = validate_config(
        edit(lambda d: d["init_message"].update(route="x")), BUILTIN_ADAPTERS
    )
    assert not report.is_valid
    assert parsed is None


def test_errors_come_before_warnings_and_counts_match() -> None:
    def change(d: Doc) -> None:
        route(d, "sink")["error_handling"].pop("dead_letter_topic")  # W502
        route(d, "sink")["outbound"] = ["fetch.in"]  # W503
        d["init_message"]["route"] = "nope"  # E202
        route(d, "fetch")["adapters"][0]["type"] = "nope"  # E103

    report = run(edit(change))
    severities = [i.severity for i in report.issues]
    assert severities == sorted(severities, key=lambda s: s is Severity.WARNING)
    assert report.error_count == 2 and report.warning_count == 2
    assert [i.code for i in report.issues] == ["E103", "E202", "W502", "W503"]


def test_unreachable_is_not_reported_when_the_init_route_is_unknown() -> None:
    report = run(edit(lambda d: d["init_message"].update(route="nope")))
    assert [i.code for i in report.issues] == ["E202"]


def test_a_route_fed_only_through_a_dead_letter_topic_is_reachable() -> None:
    def change(d: Doc) -> None:
        d["routes"]["retry"] = {
            "name": "Retry",
            "inbound": {"topic": "fetch.dlq"},
            "error_handling": {"dead_letter_topic": "retry.dlq"},
        }

    assert run(edit(change)).issues == []


def test_structural_errors_stop_before_semantic_rules() -> None:
    def change(d: Doc) -> None:
        route(d, "shape")["inbound"]["concurrency"] = 0  # E401, structural
        d["init_message"]["route"] = "nope"  # E202, semantic: not reached

    assert [i.code for i in run(edit(change)).issues] == ["E401"]


def test_unregistered_adapter_suggestion_lists_the_registry_and_a_close_match() -> None:
    report = run(edit(lambda d: route(d, "fetch")["adapters"][0].update(type="mapp")))
    (found,) = report.issues
    assert found.message == "Adapter type 'mapp' is not registered"
    assert found.suggestion == (
        "Use one of the registered adapter types: delay, fail, filter, map, pass_through. "
        "Did you mean 'map'?"
    )


def test_unknown_key_suggestion_names_the_allowed_keys() -> None:
    report = run(edit(lambda d: d.update(route={})))
    (found,) = report.issues
    assert (found.code, found.path) == ("E005", "route")
    assert found.suggestion == (
        "Remove it; allowed keys are: init_message, routes, version. Did you mean 'routes'?"
    )


def test_a_numeric_version_is_told_to_be_quoted() -> None:
    (found,) = run("version: 1.0\nroutes: {}\ninit_message: {route: a}\n").issues
    assert found.code == "E004"
    assert "Quote it" in found.suggestion


def test_a_cycle_is_reported_once_with_all_its_routes() -> None:
    report = run(edit(lambda d: route(d, "sink").update(outbound=["fetch.in"])))
    (cycle,) = [i for i in report.issues if i.code == "W503"]
    assert "'fetch', 'shape', 'sink'" in cycle.message


def test_a_route_id_that_is_not_an_identifier_is_quoted_in_paths() -> None:
    def change(d: Doc) -> None:
        d["routes"]["my.route"] = d["routes"].pop("sink")
        d["routes"]["my.route"]["adapters"] = [{"type": "nope"}]

    paths = [i.path for i in run(edit(change)).issues]
    assert 'routes["my.route"].adapters[0].type' in paths
