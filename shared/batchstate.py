"""A batch's follow-up message: where the batch stands between two of its steps.

It travels on ``BACKUP_STATUS_QUEUE`` beside the requests' follow-ups, told apart by
``"kind": "batch"``. Like them it is plain JSON with a schema version, carries the ledger step
it may move the batch on from, and is not trusted: the batch inside is checked again on read,
and a ``nextLink`` again before a token is sent to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

from shared.batches import BatchRequest
from shared.documentfields import count_field, instant_field, optional_instant_field, text_field
from shared.errors import ErrorInfo, RequestRejected
from shared.messages import format_instant

__all__ = ["BatchFollowUp", "BatchPhase", "is_batch_follow_up", "progress_of"]

SCHEMA_VERSION = 1
KIND = "batch"


class BatchPhase(Enum):
    LIST = "list"
    """List one page of the vault's protected items and record what it selects."""
    RELEASE = "release"
    """Send one recorded page's requests, each hidden until its release time."""
    COLLECT = "collect"
    """Look at the items' outcomes on the job-poll schedule until every one has ended."""


def is_batch_follow_up(document: Mapping[str, Any]) -> bool:
    return document.get("kind") == KIND


@dataclass(frozen=True)
class BatchFollowUp:
    batch: BatchRequest
    phase: BatchPhase
    requested_at: datetime
    phase_started_at: datetime
    step: int = 0
    """The ledger step this message may move the batch on from (``shared.ledger_rules``)."""
    attempt: int = 0
    throttled: int = 0
    polls: int = 0
    last_error: ErrorInfo | None = None
    deadline: datetime | None = None
    """When the phase gives up, fixed when it began."""
    page: int = 0
    """LIST: the page to list (from 0); RELEASE: the next page to release."""
    pages: int = 0
    """RELEASE and COLLECT: how many pages were listed."""
    next_link: str | None = None
    """LIST: the page to list as ARM linked it; None for the first."""
    selected: int = 0
    """Items selected so far (LIST) or in all (RELEASE, COLLECT)."""
    release_from: datetime | None = None
    """RELEASE: when item 0 may run; item i runs 60·i / BATCH_TRIGGERS_PER_MINUTE seconds later."""
    released: int = 0
    """RELEASE: items whose requests were sent (the index of the next)."""
    counts: Mapping[str, int] = field(default_factory=dict, hash=False)
    """COLLECT: the items that have ended, by status, at the last look (progress for an observer)."""

    @property
    def key(self) -> str:
        return self.batch.key

    def advance(self, **changes: Any) -> BatchFollowUp:
        return replace(self, **changes)

    def enter(self, phase: BatchPhase, now: datetime, **changes: Any) -> BatchFollowUp:
        reset: dict[str, Any] = {
            "phase": phase, "phase_started_at": now, "attempt": 0, "throttled": 0, "polls": 0, "last_error": None,
            "deadline": None,
        }
        return replace(self, **(reset | changes))

    def to_text(self) -> str:
        document: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "kind": KIND,
            "phase": self.phase.value,
            "batch": self.batch.to_json(),
            "correlationId": self.key,
            "requestedAt": format_instant(self.requested_at),
            "phaseStartedAt": format_instant(self.phase_started_at),
            "step": self.step,
            "attempt": self.attempt,
            "throttled": self.throttled,
            "polls": self.polls,
            "lastError": self.last_error.to_json() if self.last_error else None,
            "deadline": format_instant(self.deadline),
            "page": self.page,
            "pages": self.pages,
            "nextLink": self.next_link,
            "selected": self.selected,
            "releaseFrom": format_instant(self.release_from),
            "released": self.released,
            "counts": dict(self.counts) or None,
        }
        return json.dumps({key: value for key, value in document.items() if value is not None}, separators=(",", ":"))

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> BatchFollowUp:
        """A batch follow-up this app wrote; ``RequestRejected`` if it is not one."""
        if document.get("schemaVersion") != SCHEMA_VERSION or not is_batch_follow_up(document):
            raise RequestRejected("schemaVersion", f"not a batch follow-up of schema {SCHEMA_VERSION}")
        try:
            phase = BatchPhase(document.get("phase"))
        except ValueError:
            raise RequestRejected("phase", f"unknown batch phase {document.get('phase')!r}") from None
        batch = document.get("batch")
        if not isinstance(batch, dict):
            raise RequestRejected("batch", "must be a JSON object")
        last_error = document.get("lastError")
        return cls(
            batch=BatchRequest.from_json(batch),
            phase=phase,
            requested_at=instant_field(document, "requestedAt"),
            phase_started_at=instant_field(document, "phaseStartedAt"),
            step=count_field(document, "step"),
            attempt=count_field(document, "attempt"),
            throttled=count_field(document, "throttled"),
            polls=count_field(document, "polls"),
            last_error=ErrorInfo.from_json(last_error) if isinstance(last_error, dict) else None,
            deadline=optional_instant_field(document, "deadline"),
            page=count_field(document, "page"),
            pages=count_field(document, "pages"),
            next_link=text_field(document, "nextLink"),
            selected=count_field(document, "selected"),
            release_from=optional_instant_field(document, "releaseFrom"),
            released=count_field(document, "released"),
            counts=_counts(document.get("counts")),
        )


def progress_of(pending: str | None) -> dict[str, Any] | None:
    """How far a running batch is, from the follow-up its ledger record holds (the front door's GET).

    ``selected`` counts the items selected so far while listing; ``released`` the requests sent;
    ``ended`` and ``counts`` the items that had ended at the last look. None if it is no batch's.
    """
    try:
        document = json.loads(pending) if pending is not None else None
        if not isinstance(document, dict) or not is_batch_follow_up(document):
            return None
        follow_up = BatchFollowUp.from_document(document)
    except (ValueError, RequestRejected):
        return None
    released = follow_up.selected if follow_up.phase is BatchPhase.COLLECT else follow_up.released
    return {
        "kind": KIND, "selected": follow_up.selected, "released": released,
        "ended": sum(follow_up.counts.values()), "counts": dict(follow_up.counts),
    }


def _counts(value: object) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(name, str) and isinstance(count, int) and not isinstance(count, bool) and count >= 0
        for name, count in value.items()
    ):
        raise RequestRejected("counts", "must map statuses to whole numbers")
    return dict(value)
