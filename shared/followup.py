"""The follow-up message: everything needed to continue a request in a later invocation.

It travels on ``BACKUP_STATUS_QUEUE`` as plain JSON with a schema version, so a deployment
can read what the previous version wrote. The queue is not trusted: the request inside is
checked again on read, and every URL again before a token is sent to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

from shared.armid import validate_name
from shared.documentfields import count_field, instant_field, optional_instant_field, text_field
from shared.errors import ErrorInfo, RequestRejected
from shared.messages import BackupRequest, format_instant
from shared.targeting import ResourceTarget

__all__ = ["MAX_RAW_MESSAGE_BYTES", "SCHEMA_VERSION", "FollowUp", "Phase"]

SCHEMA_VERSION = 1
MAX_RAW_MESSAGE_BYTES = 16 * 1024
"""A producer's message kept while resolving: ARM events are a few KiB, and a follow-up holds 64 KiB."""


class Phase(Enum):
    RESOLVE = "resolve"
    """Find the vault and item of a request that names its VM (Backup Status - Get)."""
    TRIGGER = "trigger"
    """Send (or, after an unseen answer, first look for) the trigger POST."""
    OPERATION = "operation"
    """Poll the trigger's async operation until it names the job or fails."""
    JOB = "job"
    """Poll the backup job until it ends."""
    WAIT = "wait"
    """Another backup of the item is running: watch it (a ledger key or a job), then join or trigger."""


@dataclass(frozen=True)
class FollowUp:
    request: BackupRequest | None
    """The request as sent to Azure; None only while ``Phase.RESOLVE`` has not found the item yet."""
    phase: Phase
    requested_at: datetime
    phase_started_at: datetime
    attempt: int = 0
    """Consecutive transient failures in this phase."""
    polls: int = 0
    """Answers read in this phase; the job poll interval grows with it."""
    throttled: int = 0
    """429s in a row: they grow the backoff without counting as failed attempts."""
    async_operation_url: str | None = None
    location_url: str | None = None
    job_id: str | None = None
    triggered_at: datetime | None = None
    trigger_uncertain_since: datetime | None = None
    """Set when a POST may have reached ARM without us seeing the answer."""
    last_error: ErrorInfo | None = None
    last_state: dict[str, Any] | None = field(default=None, hash=False)
    """The latest operation or job summary, reported if time runs out."""
    deadline: datetime | None = None
    """When this phase gives up, fixed when the phase began: a later change of settings does not
    move the deadline of work already in flight. None until stamped (see ``backup.stamp_deadline``)."""
    step: int = 0
    """The ledger version this message carries the request forward from (see ``shared.ledger_rules``)."""
    ledger_etag: str | None = None
    """The ETag the ledger entry had when this message was sent: lets the next step write without a read."""
    waiting_for_key: str | None = None
    """WAIT: the ledger key whose backup of the same item is running."""
    waiting_for_job: str | None = None
    """WAIT: the id of a job of the item that Azure says is running (started outside this app)."""
    joining: bool = False
    """WAIT on a key: report that request's job as this one's (same properties) instead of triggering after it."""
    target: ResourceTarget | None = None
    """The request as given by resource id, kept after resolution so that the result names the VM."""
    raw_message: str | None = field(default=None, repr=False)
    """While resolving: the producer's message text, for a ``Rejected`` result (the resolved vault not allowed)."""
    raw_message_truncated: bool = False

    def __post_init__(self) -> None:
        if self.request is None and (self.phase is not Phase.RESOLVE or self.target is None):
            raise ValueError("a follow-up names its request, or its target while resolving")

    @property
    def backup_request(self) -> BackupRequest:
        """The request as sent to Azure: every phase but ``RESOLVE`` has one (the ledger works on it)."""
        if self.request is None:
            raise ValueError(f"the follow-up of {self.correlation_id!r} has not resolved its item yet")
        return self.request

    @property
    def correlation_id(self) -> str:
        if self.request is not None:
            return self.request.correlation_id
        return self.target.correlation_id if self.target else ""

    @property
    def label(self) -> str:
        """The item, or the resource until the item is known: what log lines name."""
        if self.request is not None:
            return self.request.item.label
        return self.target.label if self.target else "-"

    def advance(self, **changes: Any) -> FollowUp:
        return replace(self, **changes)

    def enter(self, phase: Phase, now: datetime, **changes: Any) -> FollowUp:
        """The same request in a new phase, with its counters and what it waited for reset."""
        reset: dict[str, Any] = {
            "phase": phase, "phase_started_at": now, "attempt": 0, "polls": 0, "throttled": 0, "last_error": None,
            "deadline": None, "waiting_for_key": None, "waiting_for_job": None, "joining": False,
        }
        return replace(self, **(reset | changes))

    def to_text(self) -> str:
        document: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "phase": self.phase.value,
            "request": self.request.to_json() if self.request else None,
            "target": self.target.to_json() if self.target else None,
            "rawMessage": self.raw_message,
            "rawMessageTruncated": self.raw_message_truncated or None,
            "correlationId": self.correlation_id,
            "requestedAt": format_instant(self.requested_at),
            "phaseStartedAt": format_instant(self.phase_started_at),
            "attempt": self.attempt,
            "polls": self.polls,
            "throttled": self.throttled,
            "asyncOperationUrl": self.async_operation_url,
            "locationUrl": self.location_url,
            "jobId": self.job_id,
            "triggeredAt": format_instant(self.triggered_at),
            "triggerUncertainSince": format_instant(self.trigger_uncertain_since),
            "lastError": self.last_error.to_json() if self.last_error else None,
            "lastState": self.last_state,
            "deadline": format_instant(self.deadline),
            "step": self.step,
            "ledgerEtag": self.ledger_etag,
            "waitingForKey": self.waiting_for_key,
            "waitingForJob": self.waiting_for_job,
            "joining": self.joining or None,
        }
        return json.dumps({key: value for key, value in document.items() if value is not None}, separators=(",", ":"))

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> FollowUp:
        """A follow-up this app wrote; ``RequestRejected`` if it is not one."""
        version = document.get("schemaVersion")
        if version != SCHEMA_VERSION:
            raise RequestRejected("schemaVersion", f"follow-up schema {version!r} is not {SCHEMA_VERSION}")
        try:
            phase = Phase(document.get("phase"))
        except ValueError:
            raise RequestRejected("phase", f"unknown phase {document.get('phase')!r}") from None
        request, target = _request(document, phase), _target(document, phase)
        last_error = document.get("lastError")
        last_state = document.get("lastState")
        return cls(
            request=request,
            phase=phase,
            requested_at=instant_field(document, "requestedAt"),
            phase_started_at=instant_field(document, "phaseStartedAt"),
            attempt=count_field(document, "attempt"),
            polls=count_field(document, "polls"),
            throttled=count_field(document, "throttled"),
            async_operation_url=text_field(document, "asyncOperationUrl"),
            location_url=text_field(document, "locationUrl"),
            job_id=_job_id(document),
            triggered_at=optional_instant_field(document, "triggeredAt"),
            trigger_uncertain_since=optional_instant_field(document, "triggerUncertainSince"),
            last_error=ErrorInfo.from_json(last_error) if isinstance(last_error, dict) else None,
            last_state=last_state if isinstance(last_state, dict) else None,
            deadline=optional_instant_field(document, "deadline"),
            step=count_field(document, "step"),
            ledger_etag=text_field(document, "ledgerEtag"),
            waiting_for_key=text_field(document, "waitingForKey"),
            waiting_for_job=None if document.get("waitingForJob") is None else validate_name(
                "waitingForJob", document["waitingForJob"]
            ),
            joining=document.get("joining") is True,
            target=target,
            raw_message=text_field(document, "rawMessage") if phase is Phase.RESOLVE else None,
            raw_message_truncated=document.get("rawMessageTruncated") is True,
        )

    def keeping_raw_message(self, text: str) -> FollowUp:
        """This follow-up carrying ``text``, cut to what a follow-up can hold beside the rest."""
        kept = text
        while len(json.dumps(kept)) > MAX_RAW_MESSAGE_BYTES:  # escaped as JSON writes it: ASCII, one byte a char
            kept = kept[: len(kept) * 3 // 4]
        return replace(self, raw_message=kept, raw_message_truncated=kept != text)


def _request(document: dict[str, Any], phase: Phase) -> BackupRequest | None:
    request = document.get("request")
    if phase is Phase.RESOLVE:
        if request is not None:
            raise RequestRejected("request", "a follow-up still resolving its target names no item yet")
        return None
    if not isinstance(request, dict):
        raise RequestRejected("request", "must be a JSON object")
    return BackupRequest.from_json(request)


def _target(document: dict[str, Any], phase: Phase) -> ResourceTarget | None:
    target = document.get("target")
    if target is None and phase is not Phase.RESOLVE:
        return None
    if not isinstance(target, dict):
        raise RequestRejected("target", "must be a JSON object")
    return ResourceTarget.from_json(target)


def _job_id(document: dict[str, Any]) -> str | None:
    value = document.get("jobId")
    return None if value is None else validate_name("jobId", value)
