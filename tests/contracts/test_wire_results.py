"""The CloudEvents binary-mode wire format of command results: round trips, defaults,
rejections and decode errors."""

from __future__ import annotations

import pytest

from contracts import (
    CommandAccepted,
    CommandRejected,
    ErrorBody,
    ValidationReport,
    WireError,
    WireErrorCode,
    decode_result,
    encode_result,
    rejection,
)
from contracts.validation import Severity, ValidationIssue
from tests.contracts.samples import AT
from tests.contracts.wire_support import headers_of, with_headers

REPORT = ValidationReport.of(
    [
        ValidationIssue(
            severity=Severity.ERROR, code="E103", path="routes.a", message="m", suggestion="s"
        )
    ]
)
RESULTS: list[CommandAccepted | CommandRejected] = [
    CommandAccepted(
        command_id="c1",
        command_type="StartPipeline",
        aggregate_id="01890a5d-ac96-774b-bcce-b302099a8057",
        aggregate_version=3,
        event_ids=["01890a5d-ac96-774b-bcce-b302099a8057:3"],
        reply="Pipeline is starting",
    ),
    CommandAccepted(command_id="c2", command_type="CreateRun", reply={"id": "r"}, http_status=200),
    CommandRejected(
        command_id="c3",
        command_type="CreateConfig",
        error_code="InvalidConfig",
        message="Config validation failed",
        details={"error_count": 1},
        validation_report=REPORT,
    ),
    CommandRejected(
        command_id="c4", command_type=None, error_code="MissingCommandType", message="m"
    ),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: r.command_id)
def test_results_round_trip_keyed_by_command_id(result: CommandAccepted | CommandRejected) -> None:
    record = encode_result(result, correlation_id="corr", time=AT)
    assert record.key == result.command_id.encode()
    headers = headers_of(record)
    assert headers["ce_type"] == type(result).__name__
    assert headers["ce_id"] == f"{result.command_id}/result"
    assert headers["ce_causationid"] == result.command_id
    assert headers["ce_correlationid"] == "corr"
    decoded = decode_result(record.value, record.headers)
    assert decoded.result == result
    assert type(decoded.result) is type(result)


def test_a_result_encodes_byte_for_byte_the_same_again() -> None:
    assert encode_result(RESULTS[0], time=AT) == encode_result(RESULTS[0], time=AT)


def test_accepted_defaults_to_202_and_rejected_to_400() -> None:
    assert CommandAccepted(command_id="c", command_type="T").http_status == 202
    assert (
        CommandRejected(command_id="c", command_type="T", error_code="E", message="m").http_status
        == 400
    )


class _DomainLike:
    """Shaped like domain.errors.DomainError (contracts may not import domain)."""

    error_code = "UnknownPipelineName"
    message = "Unknown pipeline name 'x'"
    details = {"pipeline_name": "x"}
    http_status = 404


def test_rejection_from_an_error_like_or_an_error_body() -> None:
    from_error = rejection(_DomainLike(), command_id="c", command_type="StartPipeline")
    assert (from_error.error_code, from_error.http_status) == ("UnknownPipelineName", 404)
    assert from_error.details == {"pipeline_name": "x"}
    body = ErrorBody(
        message="m", error_code="IllegalPipelineAction", details={"status": "Stopping"}
    )
    from_body = rejection(body, command_id="c", command_type="StartPipeline")
    assert from_body.body() == body and from_body.http_status == 400
    overridden = rejection(body, command_id="c", command_type=None, http_status=503)
    assert overridden.http_status == 503


def test_result_decode_errors() -> None:
    record = encode_result(RESULTS[0])
    with pytest.raises(WireError) as unknown:
        decode_result(record.value, with_headers(record, ce_type="CommandMaybe"))
    with pytest.raises(WireError) as invalid:
        decode_result(b'{"command_id": "c"}', record.headers)
    with pytest.raises(WireError) as no_type:
        decode_result(record.value, with_headers(record, ce_type=None))
    for caught in (unknown, invalid, no_type):
        assert caught.value.error_code is WireErrorCode.MALFORMED_MESSAGE
