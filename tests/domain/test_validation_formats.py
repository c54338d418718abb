"""The same document as YAML text, JSON text or a mapping gives the same, stable report."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import yaml

from domain.adapters import BUILTIN_ADAPTERS
from domain.validation import validate_config

# Hits structure-clean but semantically broken content: several codes, both severities.
MESSY: dict[str, Any] = {
    "version": "2",
    "routes": {
        "b": {
            "name": "Same",
            "inbound": {"topic": "b.in"},
            "adapters": [
                {"type": "map", "config": {"fields": {"x": "{payload.x}"}, "zeta": 1, "alpha": 2}},
                {"type": "delay"},
                {"type": "filtre"},
                {"type": "fail", "condition": {"field": "f", "operator": "gt", "value": "3"}},
            ],
            "outbound": ["a.in", "bad topic"],
        },
        "a": {"name": "Same", "inbound": {"topic": "a.in"}, "outbound": ["b.in"]},
        "lonely": {"name": "Lonely", "inbound": {"topic": "lonely.in"}},
    },
    "init_message": {"route": "a", "payload": {"x": 1}},
}


def report_json(document: Any) -> bytes:
    report, _ = validate_config(document, BUILTIN_ADAPTERS)
    return orjson.dumps(report.model_dump(mode="json"))


def test_yaml_json_and_mapping_give_the_same_report() -> None:
    as_mapping = report_json(MESSY)
    as_json = report_json(orjson.dumps(MESSY).decode())
    as_yaml = report_json(yaml.safe_dump(MESSY, sort_keys=False))
    assert as_mapping == as_json == as_yaml
    assert orjson.loads(as_mapping)["error_count"] >= 5


def test_yaml_and_json_give_the_same_report_for_structural_errors() -> None:
    broken = {
        "version": 1,
        "routes": {"a": {"inbound": {"topic": "t", "concurrency": 0}}},
        "extra": True,
    }
    assert report_json(orjson.dumps(broken).decode()) == report_json(yaml.safe_dump(broken))


def test_same_input_gives_byte_identical_report() -> None:
    assert report_json(MESSY) == report_json(MESSY)


def test_report_does_not_depend_on_hash_seed() -> None:
    script = (
        "import orjson,sys\n"
        "from domain.adapters import BUILTIN_ADAPTERS\n"
        "from domain.validation import validate_config\n"
        "r, _ = validate_config(sys.stdin.read(), BUILTIN_ADAPTERS)\n"
        "sys.stdout.buffer.write(orjson.dumps(r.model_dump(mode='json')))\n"
    )
    text = orjson.dumps(MESSY).decode()
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            input=text.encode(),
            capture_output=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": "."},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert outputs == {report_json(MESSY)}


def test_json_parse_error_names_the_position() -> None:
    report, parsed = validate_config('{"version": "1",\n "routes": }', BUILTIN_ADAPTERS)
    assert parsed is None
    (found,) = report.issues
    assert found.code == "E001"
    assert "line 2" in found.message


def test_yaml_parse_error_names_the_position() -> None:
    report, _ = validate_config("version: '1'\nroutes:\n  a: [\n", BUILTIN_ADAPTERS)
    (found,) = report.issues
    assert found.code == "E001"
    assert found.message.startswith("Invalid YAML at line 4")


def test_json_looking_text_is_held_to_json() -> None:
    # valid YAML flow style, invalid JSON: JSON's error wins, no silent YAML meaning
    report, _ = validate_config(
        "{version: '1', routes: {}, init_message: {route: a}}", BUILTIN_ADAPTERS
    )
    (found,) = report.issues
    assert found.code == "E001" and found.message.startswith("Invalid JSON")


def test_a_yaml_config_names_no_python_object() -> None:
    # safe_load refuses python tags: a config can never make us import code.
    report, _ = validate_config("!!python/object/apply:os.system ['true']", BUILTIN_ADAPTERS)
    assert [i.code for i in report.issues] == ["E001"]


def _alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_aliases_that_expand_past_the_limit_are_refused_at_once() -> None:
    # 10^9 nodes once expanded from about 600 bytes: refused from the composed graph,
    # never expanded (this would take hours otherwise).
    report, parsed = validate_config(_alias_bomb(9), BUILTIN_ADAPTERS)
    assert parsed is None
    (found,) = report.issues
    assert found.code == "E001"
    assert "aliases expand the document" in found.message


def test_ordinary_aliases_are_still_accepted() -> None:
    document = """
version: "1"
routes:
  a:
    name: A
    inbound: {topic: in}
    error_handling: &errors {max_retries: 1, dead_letter_topic: dlq}
    outbound: [mid]
  b: {name: B, inbound: {topic: mid}, error_handling: *errors, outbound: [out]}
init_message: {route: a}
"""
    report, parsed = validate_config(document, BUILTIN_ADAPTERS)
    assert report.is_valid, report.issues
    assert parsed is not None
