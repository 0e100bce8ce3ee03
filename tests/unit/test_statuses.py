"""shared.statuses: operation and job bodies into typed snapshots (official examples included)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.errors import ErrorInfo, json_objects
from shared.statuses import JobStatus, OperationStatus, read_job, read_operation
from tests.fakes import load_example

OPERATION = load_example("ProtectedItemOperationStatus.json")["responses"]["200"]["body"]
JOB = load_example("GetJobDetails.json")["responses"]["200"]["body"]


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("Succeeded", OperationStatus.SUCCEEDED), ("succeeded", OperationStatus.SUCCEEDED),
        ("SUCCEEDED", OperationStatus.SUCCEEDED),
        ("InProgress", OperationStatus.IN_PROGRESS), ("inprogress", OperationStatus.IN_PROGRESS),
        ("In Progress", OperationStatus.IN_PROGRESS),
        ("Failed", OperationStatus.FAILED), ("FAILED", OperationStatus.FAILED),
        ("Invalid", OperationStatus.INVALID), ("invalid", OperationStatus.INVALID),
        ("Canceled", OperationStatus.CANCELED), ("canceled", OperationStatus.CANCELED),
        ("Cancelled", OperationStatus.CANCELED), ("CANCELLED", OperationStatus.CANCELED),
        ("Unknown", OperationStatus.UNKNOWN), ("Running", OperationStatus.UNKNOWN),
        ("Completed", OperationStatus.UNKNOWN), ("", OperationStatus.UNKNOWN),
        (None, OperationStatus.UNKNOWN), (1, OperationStatus.UNKNOWN), (["Succeeded"], OperationStatus.UNKNOWN),
    ],
)
def test_operation_status(value: object, status: OperationStatus) -> None:
    assert read_operation({"status": value}).status is status


def test_operation_without_status_is_unknown() -> None:
    assert read_operation({}).status is OperationStatus.UNKNOWN


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("InProgress", JobStatus.IN_PROGRESS), ("inprogress", JobStatus.IN_PROGRESS),
        ("Completed", JobStatus.COMPLETED), ("COMPLETED", JobStatus.COMPLETED),
        ("CompletedWithWarnings", JobStatus.COMPLETED_WITH_WARNINGS),
        ("completedwithwarnings", JobStatus.COMPLETED_WITH_WARNINGS),
        ("Completed With Warnings", JobStatus.COMPLETED_WITH_WARNINGS),
        ("Failed", JobStatus.FAILED), ("failed", JobStatus.FAILED),
        ("Cancelling", JobStatus.CANCELLING), ("CANCELLING", JobStatus.CANCELLING),
        ("Cancelled", JobStatus.CANCELLED), ("cancelled", JobStatus.CANCELLED),
        ("Canceled", JobStatus.CANCELLED), ("CANCELED", JobStatus.CANCELLED),
        ("Invalid", JobStatus.INVALID),
        ("Unknown", JobStatus.UNKNOWN), ("Paused", JobStatus.UNKNOWN), ("Succeeded", JobStatus.UNKNOWN),
        (None, JobStatus.UNKNOWN), (3, JobStatus.UNKNOWN),
    ],
)
def test_job_status(value: object, status: JobStatus) -> None:
    assert read_job("job-1", {"properties": {"status": value}}).status is status


# --- operations ----------------------------------------------------------------------------


def test_official_operation_status_example() -> None:
    snapshot = read_operation(OPERATION)

    assert snapshot.status is OperationStatus.SUCCEEDED
    assert snapshot.job_id == "00000000-0000-0000-0000-000000000000"
    assert snapshot.error is None
    assert snapshot.summary == {"status": "Succeeded", "startTime": "2017-10-29T06:04:18.207325Z",
                                "endTime": "2017-10-29T06:04:18.207325Z"}


def test_official_operation_summary_drops_ids_and_properties() -> None:
    assert set(read_operation(OPERATION).summary) == {"status", "startTime", "endTime"}


@pytest.mark.parametrize(
    "properties", [None, {}, {"jobId": ""}, {"jobId": None}, {"jobId": 42}, "jobId", ["jobId"]]
)
def test_operation_without_a_usable_job_id(properties: object) -> None:
    body: dict[str, Any] = {"status": "Succeeded", "properties": properties}

    assert read_operation(body).job_id is None


def test_in_progress_operation() -> None:
    snapshot = read_operation({"id": "op", "name": "op", "status": "InProgress", "startTime": "2026-11-26T12:00:00Z"})

    assert snapshot.status is OperationStatus.IN_PROGRESS
    assert snapshot.job_id is None
    assert snapshot.summary == {"status": "InProgress", "startTime": "2026-11-26T12:00:00Z"}


def test_failed_operation_carries_its_cloud_error() -> None:
    body = {
        "status": "Failed",
        "error": {
            "code": "UserErrorBackupOperationInProgress",
            "message": "Taking snapshot is not allowed as a backup is already in progress.",
            "target": "backup",
            "details": [{"code": "Inner", "message": "m"}, "junk", 3],
            "additionalInfo": [{"type": "PolicyViolation", "info": {}}, None],
        },
    }
    snapshot = read_operation(body)

    assert snapshot.status is OperationStatus.FAILED
    assert snapshot.error == ErrorInfo(
        code="UserErrorBackupOperationInProgress",
        message="Taking snapshot is not allowed as a backup is already in progress.",
        target="backup",
        details=({"code": "Inner", "message": "m"},),
        additional_info=({"type": "PolicyViolation", "info": {}},),
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({}, ErrorInfo("Unknown", "")),
        ({"code": None, "message": None, "target": 5}, ErrorInfo("Unknown", "")),
        ({"code": 400, "message": ["m"]}, ErrorInfo("400", "['m']")),
    ],
)
def test_partial_operation_errors(error: dict[str, Any], expected: ErrorInfo) -> None:
    assert read_operation({"status": "Failed", "error": error}).error == expected


@pytest.mark.parametrize("error", [None, "boom", ["x"], 1])
def test_non_object_operation_error_is_ignored(error: object) -> None:
    assert read_operation({"status": "Failed", "error": error}).error is None


# --- jobs ----------------------------------------------------------------------------------


def test_official_job_details_example() -> None:
    snapshot = read_job("00000000-0000-0000-0000-000000000000", JOB)
    tasks = JOB["properties"]["extendedInfo"]["tasksList"]

    assert snapshot.job_id == "00000000-0000-0000-0000-000000000000"
    assert snapshot.status is JobStatus.IN_PROGRESS
    assert snapshot.error is None
    assert snapshot.summary == {
        "status": "InProgress",
        "operation": "Backup",
        "jobType": "AzureIaaSVMJob",
        "entityFriendlyName": "testvm",
        "startTime": "2017-08-03T05:31:07.014604Z",
        "duration": "PT9.8782791S",
        "activityId": "00000000-0000-0000-0000-000000000000",
        "tasks": tasks,
    }
    assert [task["taskId"] for task in snapshot.summary["tasks"]] == ["Take Snapshot", "Transfer data to vault"]


def test_job_summary_leaves_out_what_a_result_does_not_need() -> None:
    summary = read_job("j", JOB).summary

    assert not {"virtualMachineVersion", "backupManagementType", "extendedInfo", "propertyBag"} & set(summary)


def completed_job(status: str = "Completed", **properties: Any) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(JOB)
    body["properties"].update({"status": status, "endTime": "2017-08-03T05:41:07Z", **properties})
    return body


@pytest.mark.parametrize("status", ["Completed", "CompletedWithWarnings", "Cancelled"])
def test_ended_job_summary_has_its_end_time(status: str) -> None:
    summary = read_job("j", completed_job(status)).summary

    assert summary["status"] == status
    assert summary["endTime"] == "2017-08-03T05:41:07Z"


def test_failed_job_error_details_become_the_error() -> None:
    details: list[dict[str, Any]] = [
        {"errorCode": "UserErrorVmNotFound", "errorString": "The VM no longer exists.", "errorTitle": "VM missing",
         "recommendations": ["Stop protection."]},
        {"errorCode": "Second", "errorString": "second"},
    ]
    snapshot = read_job("j", completed_job("Failed", errorDetails=[*details, "junk"]))

    assert snapshot.status is JobStatus.FAILED
    assert snapshot.error == ErrorInfo(code="UserErrorVmNotFound", message="The VM no longer exists.",
                                       details=(details[1],))
    assert snapshot.summary["errorDetails"] == details


@pytest.mark.parametrize(
    ("detail", "code", "message"),
    [
        ({"errorTitle": "Title only"}, "JobFailed", "Title only"),
        ({"errorCode": "C"}, "C", ""),
        ({"errorCode": "C", "errorString": "", "errorTitle": "T"}, "C", "T"),
        ({}, "JobFailed", ""),
    ],
)
def test_partial_error_details(detail: dict[str, Any], code: str, message: str) -> None:
    error = read_job("j", completed_job("Failed", errorDetails=[detail])).error

    assert error is not None
    assert (error.code, error.message, error.details) == (code, message, ())


@pytest.mark.parametrize("details", [None, [], ["x", 1]])
def test_no_usable_error_details(details: object) -> None:
    snapshot = read_job("j", completed_job("Failed", errorDetails=details))

    assert snapshot.error is None
    assert "errorDetails" not in snapshot.summary


@pytest.mark.parametrize("body", [{}, {"properties": None}, {"properties": "x"}, {"properties": []}])
def test_job_without_properties_is_unknown(body: dict[str, Any]) -> None:
    snapshot = read_job("j", body)

    assert snapshot.status is JobStatus.UNKNOWN
    assert snapshot.summary == {}
    assert snapshot.error is None


@pytest.mark.parametrize("extended", [None, "x", {"tasksList": "x"}, {"tasksList": None}, {}])
def test_job_without_a_task_list(extended: object) -> None:
    body = completed_job(extendedInfo=extended)

    assert "tasks" not in read_job("j", body).summary


@pytest.mark.parametrize("odd", [5, True, "text", {"errorCode": "X"}])
def test_malformed_error_lists_are_read_as_none(odd: object) -> None:
    snapshot = read_job("j", completed_job("Failed", errorDetails=odd))
    operation = read_operation({"status": "Failed", "error": {"code": "X", "details": odd, "additionalInfo": odd}})

    assert (snapshot.status, snapshot.error) == (JobStatus.FAILED, None)
    assert "errorDetails" not in snapshot.summary
    assert operation.error == ErrorInfo("X", "")


@pytest.mark.parametrize(
    ("value", "objects"),
    [([{"a": 1}, 2, "x", None, {"b": 2}], [{"a": 1}, {"b": 2}]), ([], []), (None, []), (5, []), ("ab", []),
     ({"a": 1}, []), ((({"a": 1}),), [])],
)
def test_json_objects(value: object, objects: list[dict[str, Any]]) -> None:
    assert json_objects(value) == objects


@pytest.mark.parametrize(
    ("detail", "code"),
    [
        (
            {"errorCode": 400000, "errorTitle": "UserErrorBackupOperationInProgress"},
            "UserErrorBackupOperationInProgress",
        ),
        ({"errorCode": 400000, "errorTitle": "VM is not running"}, "400000"),
        ({"errorCode": 400000}, "400000"),
        ({"errorCode": "UserErrorVmNotFound", "errorTitle": "UserErrorOther"}, "UserErrorVmNotFound"),
    ],
)
def test_a_jobs_symbolic_error_name_is_its_code(detail: dict[str, object], code: str) -> None:
    snapshot = read_job("j", {"properties": {"status": "Failed", "errorDetails": [detail]}})

    assert snapshot.error is not None
    assert snapshot.error.code == code
