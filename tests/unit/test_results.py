"""shared.results: Rejected, finished and unreadable-follow-up results (fields, raw text, size)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shared.errors import ErrorInfo
from shared.followup import Phase
from shared.results import RESULT_SCHEMA_VERSION, ResultStatus, finished, rejected, unreadable_follow_up
from tests.unit.builders import NOW, backup_request, follow_up, item_id, result_of

QUEUE_MESSAGE_BYTES = 64 * 1024
ERROR = ErrorInfo(code="InvalidRequest", message="vaultName: must be 2-50 letters", target="vaultName")


def read(text: str) -> dict[str, Any]:
    return result_of(text)


# --- rejected ------------------------------------------------------------------------------


def test_rejected_fields() -> None:
    raw = b'{"vaultName": "x"}'
    document = read(rejected(raw, ERROR, NOW, correlation_id="c-1", message_id="m-1",
                             request={"vaultName": "x"}, transport="json"))

    assert document == {
        "schemaVersion": RESULT_SCHEMA_VERSION,
        "status": "Rejected",
        "correlationId": "c-1",
        "messageId": "m-1",
        "error": {"code": "InvalidRequest", "message": "vaultName: must be 2-50 letters", "target": "vaultName"},
        "request": {"vaultName": "x"},
        "transport": "json",
        "rawMessage": '{"vaultName": "x"}',
        "timings": {"requestedAt": "2026-11-26T12:00:00Z", "completedAt": "2026-11-26T12:00:00Z"},
    }


def test_rejected_without_optional_fields_omits_them() -> None:
    document = read(rejected("not json", ERROR, NOW, correlation_id="c-2", message_id=None))

    assert not {"messageId", "request", "transport", "rawMessageTruncated"} & set(document)
    assert document["rawMessage"] == "not json"


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        (b"plain text", "plain text"),
        ("already text", "already text"),
        ("caf\u00e9 \u2603".encode(), "caf\u00e9 \u2603"),
        (b"\xff\xfeabc", "\ufffd\ufffdabc"),
        (b"", ""),
        (b"line\nbreak\ttab\x00nul", "line\nbreak\ttab\x00nul"),
    ],
)
def test_rejected_keeps_the_raw_text(raw: bytes | str, kept: str) -> None:
    assert read(rejected(raw, ERROR, NOW, correlation_id="c", message_id="m"))["rawMessage"] == kept


def _bounded(text: str) -> dict[str, Any]:
    assert len(text.encode("utf-8")) <= QUEUE_MESSAGE_BYTES
    return read(text)


def test_huge_raw_text_is_truncated_and_flagged() -> None:
    raw = "x" * (100 * 1024)
    document = _bounded(rejected(raw, ERROR, NOW, correlation_id="c", message_id="m"))

    assert document["rawMessageTruncated"] is True
    assert raw.startswith(document["rawMessage"])
    assert 16 * 1024 < len(document["rawMessage"]) < len(raw)


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"unknown": "\"" * 30_000}),
        json.dumps({"unknown": "\u00e9" * 30_000}, ensure_ascii=False),
        "\u2603" * 21_000,
        "\x01" * 60_000,
    ],
)
def test_rejected_result_fits_a_queue_message(raw: str) -> None:
    request = json.loads(raw) if raw.startswith("{") else None
    text = rejected(raw.encode(), ERROR, NOW, correlation_id="c", message_id="m", request=request, transport="json")
    document = _bounded(text)

    assert document["status"] == "Rejected"
    assert raw.startswith(document["rawMessage"])
    assert document.get("rawMessageTruncated") is True or document["rawMessage"] == raw


def test_a_small_request_is_kept_beside_the_raw_text() -> None:
    raw = json.dumps({"vaultName": "x" * 1000})
    document = _bounded(rejected(raw, ERROR, NOW, correlation_id="c", message_id="m", request=json.loads(raw)))

    assert document["request"] == json.loads(raw)
    assert document["rawMessage"] == raw


# --- finished ------------------------------------------------------------------------------

JOB_SUMMARY = {"status": "Completed", "operation": "Backup", "startTime": "2026-11-26T12:00:04Z",
               "endTime": "2026-11-26T12:41:10Z", "duration": "PT41M6S"}


# A request ends in any status but these: Rejected has its own writer, PartiallySucceeded is a batch's.
@pytest.mark.parametrize(
    "status", [s for s in ResultStatus if s not in {ResultStatus.REJECTED, ResultStatus.PARTIALLY_SUCCEEDED}]
)
def test_finished_fields_for_each_status(status: ResultStatus) -> None:
    request = backup_request("vm", correlationId="change-4711")
    value = follow_up(Phase.JOB, request=request, job_id="job-1", triggered_at=NOW + timedelta(seconds=2),
                      last_state={"status": "InProgress"})
    completed = NOW + timedelta(minutes=41, seconds=40, milliseconds=100)
    error = None
    if status in {ResultStatus.FAILED, ResultStatus.TIMED_OUT}:  # the schema requires an error for these
        error = ErrorInfo("JobFailed", "the backup job ended Failed")

    document = read(finished(value, status, completed, error=error, job=JOB_SUMMARY))

    assert document["schemaVersion"] == 1
    assert document["status"] == status.value
    assert document["correlationId"] == "change-4711"
    assert document["protectedItemId"] == item_id("vm")
    assert document["jobId"] == "job-1"
    assert document["job"] == JOB_SUMMARY
    assert document["request"] == request.to_json()
    assert document["timings"] == {
        "requestedAt": "2026-11-26T12:00:00Z",
        "triggeredAt": "2026-11-26T12:00:02Z",
        "completedAt": "2026-11-26T12:41:40.100000Z",
        "elapsedSeconds": 2500.1,
    }
    if error is None:
        assert "error" not in document
    else:
        assert document["error"] == {"code": "JobFailed", "message": "the backup job ended Failed"}
    assert ("lastState" in document) is (status is ResultStatus.TIMED_OUT)


def test_timed_out_carries_the_last_state() -> None:
    value = follow_up(Phase.OPERATION, last_state={"status": "InProgress", "startTime": "2026-11-26T12:00:01Z"},
                      triggered_at=NOW)
    document = read(finished(value, ResultStatus.TIMED_OUT, NOW + timedelta(hours=6),
                             error=ErrorInfo("OperationTimedOut", "still running")))

    assert document["lastState"] == {"status": "InProgress", "startTime": "2026-11-26T12:00:01Z"}
    assert document["error"]["code"] == "OperationTimedOut"
    assert document["timings"]["elapsedSeconds"] == 21600.0


def test_finished_omits_what_is_not_known() -> None:
    document = read(finished(follow_up(), ResultStatus.FAILED, NOW, error=ErrorInfo("Http400", "bad")))

    assert not {"jobId", "job", "lastState", "truncated", "batch"} & set(document)
    assert document["timings"] == {"requestedAt": "2026-11-26T12:00:00Z", "completedAt": "2026-11-26T12:00:00Z",
                                   "elapsedSeconds": 0.0}  # never triggered: no triggeredAt, not a null


def test_the_result_of_an_item_of_a_batch_names_the_batch() -> None:
    request = backup_request("vm", correlationId="night/VM;x", batch="night")

    document = read(finished(follow_up(request=request, job_id="j-1"), ResultStatus.SUCCEEDED, NOW, job=JOB_SUMMARY))

    assert document["batch"] == "night"
    assert document["request"]["batch"] == "night"


def _big_job(tasks: int = 0, details: int = 0) -> dict[str, Any]:
    return {
        **JOB_SUMMARY, "status": "Failed",
        "tasks": [{"taskId": f"task {index} " + "t" * 200, "status": "Completed"} for index in range(tasks)],
        "errorDetails": [{"errorCode": f"E{index}", "errorString": "e" * 200} for index in range(details)],
    }


def test_a_huge_task_list_is_shed_first() -> None:
    value = follow_up(Phase.JOB, job_id="job-1", triggered_at=NOW, last_state={"status": "x" * 100})
    error = ErrorInfo("JobFailed", "failed", details=({"code": "d"},))
    document = _bounded(finished(value, ResultStatus.FAILED, NOW, error=error, job=_big_job(tasks=400, details=3)))

    assert document["truncated"] is True
    assert "tasks" not in document["job"]
    assert len(document["job"]["errorDetails"]) == 3  # what still fits is kept
    assert document["error"]["details"] == [{"code": "d"}]
    assert (document["status"], document["jobId"], document["error"]["code"]) == ("Failed", "job-1", "JobFailed")


def test_huge_error_details_are_shed_next() -> None:
    value = follow_up(Phase.JOB, job_id="job-1", triggered_at=NOW)
    details = tuple({"code": f"D{index}", "message": "d" * 300} for index in range(300))
    error = ErrorInfo("UserErrorVmNotFound", "gone", details=details, additional_info=details)
    document = _bounded(finished(value, ResultStatus.FAILED, NOW, error=error, job=_big_job(tasks=2, details=300)))

    assert document["truncated"] is True
    assert document["error"] == {"code": "UserErrorVmNotFound", "message": "gone"}
    assert "errorDetails" not in document["job"]
    assert document["job"]["status"] == "Failed"


def test_a_huge_error_message_is_cut_last() -> None:
    value = follow_up(Phase.OPERATION, triggered_at=NOW)
    document = _bounded(finished(value, ResultStatus.FAILED, NOW, error=ErrorInfo("Http400", "m" * 100_000)))

    assert document["truncated"] is True
    assert document["error"]["message"] == "m" * 2000
    assert document["error"]["code"] == "Http400"


def test_a_timed_out_result_sheds_its_last_state_when_too_big() -> None:
    value = follow_up(Phase.JOB, job_id="job-1", triggered_at=NOW, last_state={"tasks": ["x" * 1000] * 80})
    document = _bounded(finished(value, ResultStatus.TIMED_OUT, NOW, error=ErrorInfo("JobTimedOut", "late")))

    assert document["truncated"] is True
    assert "lastState" not in document


def test_finished_carries_arm_error_details_and_request_ids() -> None:
    error = ErrorInfo("UserErrorBackupOperationInProgress", "busy", target="item", details=({"code": "d"},),
                      http_status=409, request_id="req-1", correlation_request_id="corr-1")
    document = read(finished(follow_up(Phase.OPERATION, triggered_at=NOW), ResultStatus.FAILED, NOW, error=error))

    assert document["error"] == {"code": "UserErrorBackupOperationInProgress", "message": "busy", "target": "item",
                                 "details": [{"code": "d"}], "httpStatus": 409, "requestId": "req-1",
                                 "correlationRequestId": "corr-1"}


# --- unreadable follow-up ------------------------------------------------------------------


def test_unreadable_follow_up() -> None:
    error = ErrorInfo("InvalidRequest", "schemaVersion: follow-up schema 9 is not 1", target="schemaVersion")
    document = read(unreadable_follow_up(b'{"schemaVersion": 9}', error, NOW, correlation_id=None, message_id="m-7"))

    assert document == {
        "schemaVersion": 1,
        "status": "Failed",
        "correlationId": "m-7",
        "messageId": "m-7",
        "error": {"code": "UnreadableFollowUp", "message": "schemaVersion: follow-up schema 9 is not 1",
                  "target": "schemaVersion"},
        "rawMessage": '{"schemaVersion": 9}',
        "timings": {"completedAt": "2026-11-26T12:00:00Z"},
    }


@pytest.mark.parametrize("raw", ['"' * 60_000, "\u00e9" * 30_000])
def test_unreadable_follow_up_fits_a_queue_message(raw: str) -> None:
    error = ErrorInfo("InvalidRequest", "message: is not valid JSON", target="message")
    _bounded(unreadable_follow_up(raw.encode(), error, NOW, correlation_id=None, message_id="m"))
