"""The HTTP front door's answers: status, headers and JSON body for each outcome; no I/O.

``backup_api`` speaks the asynchronous request-reply pattern a Logic Apps HTTP action follows by
itself: 202 with an absolute ``Location`` and ``Retry-After`` while a request runs, then one
non-202 answer whose body becomes the action's output. Here, that final answer is 200 with the
result document (byte for byte what ``BACKUP_RESULTS_QUEUE`` gets). Every answer is JSON, and
none carries more than its outcome: no exception text, no storage URL, no token.

``Retry-After`` is the time until the app's next planned look at the request (its ledger
record's ``next_look_at``), never below ``RETRY_AFTER_FLOOR``: a poll before that look can only
see what the last one saw.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.batchstate import progress_of
from shared.errors import ErrorInfo
from shared.ledger import RequestRecord
from shared.messages import format_instant

__all__ = [
    "RETRY_AFTER_FLOOR",
    "UNAVAILABLE_RETRY_AFTER",
    "Answer",
    "accepted",
    "internal_error",
    "invalid",
    "ledger_off",
    "method_not_allowed",
    "not_found",
    "refused",
    "retry_after",
    "reused",
    "state",
    "unavailable",
]

RETRY_AFTER_FLOOR = 5
UNAVAILABLE_RETRY_AFTER = 30
"""Seconds a caller should wait after a 503: long enough for a storage blip to pass."""

_COMMON_HEADERS: Mapping[str, str] = {
    "Content-Type": "application/json; charset=utf-8",
    # A state answer is stale the moment the request moves on; nothing in between may keep it.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class Answer:
    status: int
    body: Mapping[str, Any] | str
    """A document to serialize, or one already serialized (a result, sent as it was recorded)."""
    headers: Mapping[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return self.body if isinstance(self.body, str) else json.dumps(self.body, separators=(",", ":"))

    def all_headers(self) -> dict[str, str]:
        return {**_COMMON_HEADERS, **self.headers}


def retry_after(next_look_at: datetime | None, now: datetime) -> int:
    """Whole seconds until the next planned look, at least ``RETRY_AFTER_FLOOR``."""
    if next_look_at is None:
        return RETRY_AFTER_FLOOR
    return max(RETRY_AFTER_FLOOR, math.ceil((next_look_at - now).total_seconds()))


def accepted(record: RequestRecord, location: str, now: datetime) -> Answer:
    """202: the request is recorded (and queued, or already known); here is where to look."""
    return Answer(202, _running(record), _polling(location, record, now))


def state(record: RequestRecord, location: str, now: datetime) -> Answer:
    """GET: 200 with the result document once there is one, else 202 with the state so far."""
    if record.result is not None:
        return Answer(200, record.result)
    return Answer(202, _running(record), _polling(location, record, now))


def _running(record: RequestRecord) -> dict[str, Any]:
    document: dict[str, Any] = {
        "status": record.status if record.finished and record.status else "Running",
        "correlationId": record.key,
        _item_field(record.item_id): record.item_id,
        "phase": record.phase,
        "jobId": record.job_id,
        "requestedAt": format_instant(record.created_at),
        "nextLookAt": format_instant(record.next_look_at),
        **(progress_of(record.pending) or {}),
    }
    return {name: value for name, value in document.items() if value is not None}


def _item_field(item_id: str) -> str:
    """A request's record names its item; a request by resource id that found none, its resource; a batch, its vault."""
    lowered = item_id.lower()
    if "/protecteditems/" in lowered:
        return "protectedItemId"
    return "vaultId" if lowered.rpartition("/")[0].endswith("/providers/microsoft.recoveryservices/vaults") else (
        "resourceId"
    )


def _polling(location: str, record: RequestRecord, now: datetime) -> dict[str, str]:
    return {"Location": location, "Retry-After": str(retry_after(record.next_look_at, now))}


def invalid(error: ErrorInfo) -> Answer:
    """400: the error a ``Rejected`` result would carry; nothing was recorded or sent."""
    return Answer(400, {"status": "Rejected", "error": error.to_json()})


def refused(status: int, error: ErrorInfo) -> Answer:
    """413 or 415: the body was not read."""
    return Answer(status, {"status": "Rejected", "error": error.to_json()})


def reused(error: ErrorInfo) -> Answer:
    """409: the key names another request, whose outcome is not this one's to see."""
    return Answer(409, {"status": "Rejected", "error": error.to_json()})


def not_found(key: str) -> Answer:
    return Answer(404, {"error": ErrorInfo(
        "NotFound", f"no request with key {key!r} is known (finished requests are kept LEDGER_RETENTION_DAYS days)",
        target="key",
    ).to_json()})


def method_not_allowed(method: str, allowed: tuple[str, ...]) -> Answer:
    shown = method[:16]
    return Answer(405, {"error": ErrorInfo(
        "MethodNotAllowed", f"{shown} is not answered here; use {' or '.join(allowed)}"
    ).to_json()}, {"Allow": ", ".join(allowed)})


def unavailable(what: str, retry_after: int = UNAVAILABLE_RETRY_AFTER) -> Answer:
    """503 + Retry-After: storage (or ARM) could not be reached; nothing about it beyond which part."""
    return Answer(503, {"error": ErrorInfo(
        "ServiceUnavailable", f"{what} cannot be reached now; send the same request again later"
    ).to_json()}, {"Retry-After": str(max(RETRY_AFTER_FLOOR, retry_after))})


def ledger_off() -> Answer:
    """501: configuration, not a passing failure, so no Retry-After."""
    return Answer(501, {"error": ErrorInfo(
        "LedgerOff", "the HTTP front door needs the request ledger, and BACKUP_LEDGER_TABLE is set empty; "
        "send requests to the requests queue instead, or set BACKUP_LEDGER_TABLE",
    ).to_json()})


def internal_error() -> Answer:
    return Answer(500, {"error": ErrorInfo(
        "InternalError", "the request could not be handled; the app's log has the details"
    ).to_json()})
