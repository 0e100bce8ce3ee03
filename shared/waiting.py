"""The WAIT phase's rules: another backup of the item is running; join it or trigger after it.

Pure decisions like ``shared.backup``: what was seen of the running backup and the time in,
``Continue`` or ``Finish`` out. The running backup is either another key's (its ledger record
is watched: no ARM call) or a job Azure named as in progress (started outside this app: its
job is polled). Looks follow the job-poll schedule; only the phase deadline ends a wait.
"""

from __future__ import annotations

import json
from datetime import datetime

from shared.backup import Continue, Decision, Finish, job_poll_interval, keep_polling
from shared.errors import ErrorInfo
from shared.followup import FollowUp, Phase
from shared.ledger import RequestRecord
from shared.messages import parse_instant
from shared.results import ResultStatus
from shared.settings import Settings
from shared.statuses import JobSnapshot, JobStatus

__all__ = ["after_running_job_lookup", "after_watched_job", "after_watched_request"]

_STILL_RUNNING = {JobStatus.IN_PROGRESS, JobStatus.CANCELLING, JobStatus.UNKNOWN}
_WAIT_TIMEOUT = "WaitTimedOut"


def after_watched_request(
    follow_up: FollowUp, owner: RequestRecord | None, now: datetime, settings: Settings
) -> Decision:
    """A look at the record of the key whose backup of the item runs."""
    seen = follow_up.advance(polls=follow_up.polls + 1, attempt=0)
    if owner is not None and not owner.finished:
        return keep_polling(seen, job_poll_interval(seen.polls, settings), now, settings, _WAIT_TIMEOUT)
    if follow_up.joining and owner is not None and owner.job_id is not None and owner.result is not None:
        return _joined(seen, owner)
    # Ended without a job to share (refused, failed before it began), or forgotten: try our own.
    return _trigger_now(seen, now, settings)


def after_running_job_lookup(
    follow_up: FollowUp, job_id: str | None, now: datetime, settings: Settings
) -> Decision:
    """Azure said a backup is running; the job list names it (or no longer lists one running)."""
    seen = follow_up.advance(polls=follow_up.polls + 1, attempt=0)
    if job_id is None:
        return _trigger_now(seen, now, settings)
    watching = seen.advance(waiting_for_job=job_id)
    return keep_polling(watching, job_poll_interval(seen.polls, settings), now, settings, _WAIT_TIMEOUT)


def after_watched_job(
    follow_up: FollowUp, snapshot: JobSnapshot, retry_after: float | None, now: datetime, settings: Settings
) -> Decision:
    seen = follow_up.advance(polls=follow_up.polls + 1, attempt=0)
    if snapshot.status not in _STILL_RUNNING:
        return _trigger_now(seen, now, settings)
    wait = max(job_poll_interval(seen.polls, settings), retry_after or 0)
    return keep_polling(seen, wait, now, settings, _WAIT_TIMEOUT)


def _trigger_now(follow_up: FollowUp, now: datetime, settings: Settings) -> Decision:
    return Continue(follow_up.enter(Phase.TRIGGER, now), settings.min_delay_seconds)


def _joined(follow_up: FollowUp, owner: RequestRecord) -> Decision:
    """The owner's outcome, reported under this request's own key."""
    document = json.loads(owner.result or "{}")
    error = document.get("error")
    job = document.get("job")
    timings = document.get("timings") if isinstance(document.get("timings"), dict) else {}
    status = ResultStatus(owner.status or document.get("status"))
    reported = follow_up.advance(
        job_id=owner.job_id, triggered_at=_instant(timings.get("triggeredAt")) or follow_up.triggered_at
    )
    return Finish(
        status, reported, error=ErrorInfo.from_json(error) if isinstance(error, dict) else None,
        job=job if isinstance(job, dict) else None, joined=owner.key,
    )


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_instant(value)
    except ValueError:
        return None
