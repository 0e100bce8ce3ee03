"""What ARM's answers say: operation and job bodies read into typed snapshots.

Statuses compare case-insensitively (operations say ``Canceled``, jobs say ``Cancelled``).
A status this app does not know is kept as ``UNKNOWN`` and treated as still running, so a new
service value delays a result rather than inventing one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from shared.armid import is_valid_name
from shared.errors import ErrorInfo, json_objects

__all__ = [
    "JobSnapshot", "JobStatus", "OperationSnapshot", "OperationStatus", "read_job", "read_operation",
]


class OperationStatus(Enum):
    INVALID = "Invalid"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"
    UNKNOWN = "Unknown"


class JobStatus(Enum):
    INVALID = "Invalid"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    COMPLETED_WITH_WARNINGS = "CompletedWithWarnings"
    FAILED = "Failed"
    CANCELLING = "Cancelling"
    CANCELLED = "Cancelled"
    UNKNOWN = "Unknown"


StatusT = TypeVar("StatusT", OperationStatus, JobStatus)


def _status(kind: type[StatusT], value: object) -> StatusT:
    if isinstance(value, str):
        wanted = value.replace(" ", "").lower()
        for status in kind:
            if status.value.lower() == wanted:
                return status
        # Either spelling of cancelled is the same end, whichever API says it.
        if wanted in {"canceled", "cancelled"}:
            return kind("Canceled" if kind is OperationStatus else "Cancelled")
    return kind("Unknown")


@dataclass(frozen=True)
class OperationSnapshot:
    status: OperationStatus
    job_id: str | None
    error: ErrorInfo | None
    summary: Mapping[str, Any]
    """What a result shows of the operation: status, start and end."""


@dataclass(frozen=True)
class JobSnapshot:
    job_id: str
    status: JobStatus
    error: ErrorInfo | None
    summary: Mapping[str, Any]
    """What a result shows of the job: status, times, duration, error details, tasks."""


def read_operation(body: Mapping[str, Any]) -> OperationSnapshot:
    """An operationsStatus body (ProtectedItemOperationStatus in the REST examples)."""
    status = _status(OperationStatus, body.get("status"))
    properties = body.get("properties")
    job_id = properties.get("jobId") if isinstance(properties, dict) else None
    error = _cloud_error_body(body.get("error"))
    summary = {key: body[key] for key in ("status", "startTime", "endTime") if key in body}
    return OperationSnapshot(
        status=status,
        job_id=job_id if isinstance(job_id, str) and is_valid_name(job_id) else None,
        error=error,
        summary=summary,
    )


def read_job(job_id: str, body: Mapping[str, Any]) -> JobSnapshot:
    """A backupJobs/{jobId} body (GetJobDetails in the REST examples)."""
    properties = body.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    status = _status(JobStatus, properties.get("status"))
    error_details = json_objects(properties.get("errorDetails"))
    extended = properties.get("extendedInfo")
    if not isinstance(extended, dict):
        extended = {}
    summary: dict[str, Any] = {
        key: properties[key]
        for key in ("status", "operation", "jobType", "entityFriendlyName", "startTime", "endTime", "duration",
                    "activityId")
        if key in properties
    }
    if error_details:
        summary["errorDetails"] = error_details
    if isinstance(extended.get("tasksList"), list):
        summary["tasks"] = extended["tasksList"]
    return JobSnapshot(job_id=job_id, status=status, error=_job_error(error_details), summary=summary)


def _cloud_error_body(error: object) -> ErrorInfo | None:
    if not isinstance(error, dict):
        return None
    return ErrorInfo.from_cloud_error(error, default_code="Unknown")


_SYMBOLIC_CODE = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def _job_error(error_details: list[dict[str, Any]]) -> ErrorInfo | None:
    """The first error detail as an ErrorInfo, with the symbolic code wherever the job gives one.

    The spec types ``errorCode`` as an int32 and VM and workload jobs put the symbolic name
    (``UserErrorBackupOperationInProgress``) in ``errorTitle``; consumers match on the name, so it
    becomes the code (the number stays in the result's ``job.errorDetails``).
    """
    if not error_details:
        return None
    first = error_details[0]
    number, title = first.get("errorCode"), first.get("errorTitle")
    if isinstance(number, str) and _SYMBOLIC_CODE.fullmatch(number):
        code = number
    elif isinstance(title, str) and _SYMBOLIC_CODE.fullmatch(title):
        code = title
    else:
        code = str(number) if number not in (None, "") else "JobFailed"
    return ErrorInfo(
        code=code,
        message=str(first.get("errorString") or title or ""),
        details=tuple(error_details[1:]),
    )
