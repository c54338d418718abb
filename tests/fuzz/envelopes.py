"""Kafka headers and values for the decoder fuzzers: a well-formed CloudEvents envelope,
then broken one way (a header missing, empty, repeated, upper-cased, `None`, not UTF-8, an
unknown type, a wrong specversion or content type, a bad time), and values as bytes that
are JSON, or are not (truncated, not UTF-8, deeply nested, a number out of range)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

from aiokafka.structs import ConsumerRecord
from hypothesis import strategies as st

from contracts.envelope import (
    CE_CORRELATIONID,
    CE_ID,
    CE_SOURCE,
    CE_SPECVERSION,
    CE_TIME,
    CE_TYPE,
    CONTENT_TYPE,
    message_headers,
)
from tests.fuzz.commands import HUGE_TEXT

RawHeaders = list[tuple[str, bytes | None]]
TOPIC: Final = "fuzz.commands"

T0: Final = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HEADER_NAMES: Final = (CE_SPECVERSION, CE_ID, CE_SOURCE, CE_TYPE, CE_TIME, CONTENT_TYPE)

# Text a header can carry: plain ids, empty, odd unicode, huge.
_HEADER_TEXT: Final = st.one_of(
    st.uuids().map(str), st.just(""), st.text(max_size=20), HUGE_TEXT.map(lambda t: t[:5_000])
)
_HEADER_BYTES: Final = st.one_of(
    _HEADER_TEXT.map(str.encode),
    st.binary(max_size=12),  # mostly not UTF-8
    st.just(b"\xff\xfe"),
    st.none(),
)
_ODD_VALUES: Final[dict[str, st.SearchStrategy[str]]] = {
    CE_SPECVERSION: st.sampled_from(["1.0", "0.3", "", "1.0 "]),
    CONTENT_TYPE: st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/plain", "", ";"]
    ),
    CE_TIME: st.sampled_from(
        ["2026-03-01T12:00:00Z", "2026-13-01T00:00:00Z", "yesterday", "1e30", "", "0"]
    ),
}


def envelope(command_type: str, command_id: str) -> RawHeaders:
    """The headers `encode_command` writes, for a type and an id of the test's choosing."""
    headers = message_headers(
        id=command_id,
        source="/fuzz",
        type=command_type,
        time=T0,
        extensions=[(CE_CORRELATIONID, "corr-1")],
    )
    return list(headers)


def _set(headers: RawHeaders, name: str, value: bytes | None) -> RawHeaders:
    return [(n, value if n == name else v) for n, v in headers]


@st.composite
def broken(draw: st.DrawFn, headers: RawHeaders) -> RawHeaders:
    """`headers` broken one way (or left as they are)."""
    how = draw(st.sampled_from(["keep", "drop", "set", "odd", "repeat", "upper", "add"]))
    name = draw(st.sampled_from(HEADER_NAMES))
    if how == "drop":
        return [(n, v) for n, v in headers if n != name]
    if how == "set":
        return _set(headers, name, draw(_HEADER_BYTES))
    if how == "odd" and name in _ODD_VALUES:
        return _set(headers, name, draw(_ODD_VALUES[name]).encode())
    if how == "repeat":
        return [*headers, (name, draw(_HEADER_BYTES))]
    if how == "upper":
        return [(n.upper() if n == name else n, v) for n, v in headers]
    if how == "add":
        return [*headers, (draw(st.text(max_size=12)), draw(_HEADER_BYTES))]
    return headers


def json_bytes(body: Any) -> bytes:
    # The standard library's encoder: it writes integers of any size, which orjson refuses
    # to (a producer in another language may send them).
    return json.dumps(body, ensure_ascii=False).encode()


_NOT_JSON: Final = st.one_of(
    st.none(),
    st.just(b""),
    st.binary(max_size=40),
    st.just(b'{"a": 1'),
    st.just(b'{"name": "\xff\xfe"}'),
    st.just(b'{"name": "\\ud800"}'),  # a lone surrogate
    st.just(b'{"timeout_s": 1e400}'),
    st.just(b'{"name": NaN}'),
    st.integers(1, 3_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 3_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
)


def values(body: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes | None]:
    """`body` as JSON bytes, or bytes that are no JSON object at all."""
    as_json = body.map(json_bytes)
    truncated = st.tuples(as_json, st.integers(0, 50)).map(lambda vb: vb[0][: vb[1]])
    return st.one_of(as_json, as_json, truncated, _NOT_JSON)


def consumed(value: bytes | None, headers: RawHeaders) -> ConsumerRecord[bytes, bytes]:
    """The message as the command handler's consumer hands it over: offset 7 of
    partition 0 of TOPIC."""
    size = len(value or b"")
    return ConsumerRecord(TOPIC, 0, 7, 0, 0, b"key", value, None, 3, size, headers)  # type: ignore[arg-type]
