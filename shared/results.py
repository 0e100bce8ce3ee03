"""Result messages: one plain-JSON document per request on ``BACKUP_RESULTS_QUEUE``.

Its format is published as ``schemas/backup-result.schema.json``.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Any

from shared.errors import DAILY_LIMIT_CODES, ErrorInfo
from shared.followup import FollowUp
from shared.messages import format_instant
from shared.timing import next_utc_midnight

__all__ = ["RESULT_SCHEMA_VERSION", "ResultStatus", "finished", "rejected", "unreadable_follow_up"]

RESULT_SCHEMA_VERSION = 1
_MAX_RESULT_BYTES = 60 * 1024  # a queue message holds 64 KiB; an oversized result would poison its request
_MAX_RAW_MESSAGE_CHARS = 48 * 1024


class ResultStatus(Enum):
    SUCCEEDED = "Succeeded"
    COMPLETED_WITH_WARNINGS = "CompletedWithWarnings"
    TRIGGERED = "Triggered"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"
    REJECTED = "Rejected"
    PARTIALLY_SUCCEEDED = "PartiallySucceeded"
    """Only a batch's summary: some of its items succeeded, not all (``shared.batches``)."""


def rejected(
    raw_message: bytes | str,
    error: ErrorInfo,
    now: datetime,
    *,
    correlation_id: str,
    message_id: str | None,
    request: dict[str, Any] | None = None,
    transport: str | None = None,
    kind: str | None = None,
) -> str:
    """A ``Rejected`` result: nothing was sent to Azure; the raw text is kept so nothing is lost.

    ``kind`` is ``batch`` for a batch request, so that its consumer knows no summary follows.
    """
    raw_text = _raw_text(raw_message)
    document: dict[str, Any] = {
        "schemaVersion": RESULT_SCHEMA_VERSION,
        "kind": kind,
        "status": ResultStatus.REJECTED.value,
        "correlationId": correlation_id,
        "messageId": message_id,
        "error": error.to_json(),
        "request": request,
        "transport": transport,
        "rawMessage": raw_text,
        "timings": {"requestedAt": format_instant(now), "completedAt": format_instant(now)},
    }
    return _with_raw_text(document)


def unreadable_follow_up(
    raw_message: bytes, error: ErrorInfo, now: datetime, *, correlation_id: str | None, message_id: str | None
) -> str:
    """A ``Failed`` result for a follow-up this app cannot read: its text is kept for an operator."""
    document: dict[str, Any] = {
        "schemaVersion": RESULT_SCHEMA_VERSION,
        "status": ResultStatus.FAILED.value,
        "correlationId": correlation_id or message_id,
        "messageId": message_id,
        "error": {**error.to_json(), "code": "UnreadableFollowUp"},
        "rawMessage": _raw_text(raw_message),
        "timings": {"completedAt": format_instant(now)},
    }
    return _with_raw_text(document)


def _with_raw_text(document: dict[str, Any]) -> str:
    """The document as text within a queue message's size, shortening the raw text if need be.

    The decoded request repeats the raw text, so it goes first; then the raw text is cut (JSON
    escaping can make it several times longer than it was, so the budget is in encoded bytes).
    """
    text = _dump(document)
    if len(text.encode("utf-8")) > _MAX_RESULT_BYTES:
        document["request"] = None
        document["rawMessage"] = document["rawMessage"][:_MAX_RAW_MESSAGE_CHARS]
        document["rawMessageTruncated"] = True
        text = _dump(document)
        while len(text.encode("utf-8")) > _MAX_RESULT_BYTES:
            document["rawMessage"] = document["rawMessage"][: len(document["rawMessage"]) * 3 // 4]
            text = _dump(document)
    return text


def finished(
    follow_up: FollowUp,
    status: ResultStatus,
    now: datetime,
    *,
    error: ErrorInfo | None = None,
    job: dict[str, Any] | None = None,
    joined: str | None = None,
) -> str:
    """The result of a request that got past validation (by resource id: also one whose vault was refused).

    ``joined`` names the ledger key whose backup this request reported as its own; a daily
    limit error says when the item may be backed up again (``retryAt``, the next UTC midnight).
    """
    request, target = follow_up.request, follow_up.target
    retry_at = next_utc_midnight(now) if error is not None and error.code in DAILY_LIMIT_CODES else None
    document: dict[str, Any] = {
        "schemaVersion": RESULT_SCHEMA_VERSION,
        "status": status.value,
        "correlationId": follow_up.correlation_id,
        "resourceId": target.resource.id if target else None,
        "protectedItemId": request.item.id if request else None,
        "jobId": follow_up.job_id,
        "batch": request.batch if request else None,
        "joined": joined,
        "job": job,
        "error": error.to_json() if error else None,
        "retryAt": format_instant(retry_at),
        "lastState": follow_up.last_state if status is ResultStatus.TIMED_OUT else None,
        "request": request.to_json() if request else target.to_json() if target else None,
        **(_kept_raw_message(follow_up) if status is ResultStatus.REJECTED else {}),
        "timings": _without_nulls({
            "requestedAt": format_instant(follow_up.requested_at),
            "triggeredAt": format_instant(follow_up.triggered_at),
            "completedAt": format_instant(now),
            "elapsedSeconds": round((now - follow_up.requested_at).total_seconds(), 3),
        }),
    }
    return _fitted(document)


def _kept_raw_message(follow_up: FollowUp) -> dict[str, Any]:
    """What a follow-up kept of the producer's message, for a request refused after it was resolved."""
    return {"rawMessage": follow_up.raw_message or "", "rawMessageTruncated": follow_up.raw_message_truncated or None}


def _raw_text(raw_message: bytes | str) -> str:
    return raw_message.decode("utf-8", "replace") if isinstance(raw_message, bytes) else raw_message


def _without_nulls(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if value is not None}


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(_without_nulls(document), separators=(",", ":"))


def _fitted(document: dict[str, Any]) -> str:
    """The document as text, shed of ARM's bulkiest parts if it would not fit in a queue message.

    What ARM returns (error details, task lists) is not ours to bound; status, ids, codes and
    timings always survive.
    """
    text = _dump(document)
    for shed in (_shed_tasks, _shed_details, _shed_messages):
        if len(text.encode("utf-8")) <= _MAX_RESULT_BYTES:
            break
        shed(document)
        document["truncated"] = True
        text = _dump(document)
    return text


def _shed_tasks(document: dict[str, Any]) -> None:
    document["lastState"] = None
    if isinstance(document.get("job"), dict):
        document["job"] = {key: value for key, value in document["job"].items() if key != "tasks"}


def _shed_details(document: dict[str, Any]) -> None:
    if isinstance(document.get("error"), dict):
        document["error"] = {k: v for k, v in document["error"].items() if k not in {"details", "additionalInfo"}}
    if isinstance(document.get("job"), dict):
        document["job"] = {key: value for key, value in document["job"].items() if key != "errorDetails"}


def _shed_messages(document: dict[str, Any]) -> None:
    if isinstance(document.get("error"), dict):
        document["error"] = {**document["error"], "message": str(document["error"].get("message", ""))[:2000]}
