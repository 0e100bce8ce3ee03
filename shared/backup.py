"""The rules: given what ARM just said (or how it failed), what happens next.

Pure decisions: a follow-up, an answer and the time in; ``Continue`` (send the follow-up again
after a delay) or ``Finish`` (write a result) out. No I/O, no clock reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.arm import Accepted, LocationSnapshot
from shared.errors import (
    IN_PROGRESS_CODES,
    ArmThrottled,
    ArmUnavailable,
    ArmUnreachable,
    ErrorInfo,
    PermanentError,
    TransientError,
)
from shared.followup import FollowUp, Phase
from shared.results import ResultStatus
from shared.settings import Settings
from shared.statuses import JobSnapshot, JobStatus, OperationSnapshot, OperationStatus
from shared.timing import backoff_seconds, delay_within

__all__ = [
    "Continue",
    "Decision",
    "Finish",
    "after_job",
    "after_job_lookup",
    "after_location",
    "after_operation",
    "after_permanent",
    "after_transient",
    "after_trigger",
    "job_poll_interval",
    "keep_polling",
    "look_before_posting_since",
    "phase_deadline",
    "stamp_deadline",
    "wait_for_running_backup",
]


@dataclass(frozen=True)
class Continue:
    follow_up: FollowUp
    delay_seconds: int


@dataclass(frozen=True)
class Finish:
    status: ResultStatus
    follow_up: FollowUp
    error: ErrorInfo | None = None
    job: dict[str, object] | None = None
    joined: str | None = None
    """The ledger key whose backup this request reports as its own."""


Decision = Continue | Finish

JOB_LOOKUP_TRIES = 3

_JOB_ENDS = {
    JobStatus.COMPLETED: ResultStatus.SUCCEEDED,
    JobStatus.COMPLETED_WITH_WARNINGS: ResultStatus.COMPLETED_WITH_WARNINGS,
    JobStatus.FAILED: ResultStatus.FAILED,
    JobStatus.INVALID: ResultStatus.FAILED,
    JobStatus.CANCELLED: ResultStatus.CANCELLED,
}


def phase_deadline(follow_up: FollowUp, settings: Settings) -> datetime:
    """When the current phase gives up: jobs may run for many hours, operations should not."""
    if follow_up.deadline is not None:
        return follow_up.deadline
    # Waiting for another backup of the item lasts as long as that backup may.
    long_phase = follow_up.phase in {Phase.JOB, Phase.WAIT}
    limit = settings.job_timeout_seconds if long_phase else settings.operation_timeout_seconds
    return follow_up.phase_started_at + timedelta(seconds=limit)


def stamp_deadline(follow_up: FollowUp, settings: Settings) -> FollowUp:
    """The follow-up carrying its phase's deadline, so that the message says when it gives up."""
    if follow_up.deadline is not None:
        return follow_up
    return follow_up.advance(deadline=phase_deadline(follow_up, settings))


def look_before_posting_since(follow_up: FollowUp) -> datetime | None:
    """Since when to look for a job of the item before sending the trigger, or None to just send it.

    Only a request's first POST is sent without looking. Any later one may race an earlier
    invocation of the same request (a redelivered message, a lost answer) that did start a
    backup: a second trigger would spend one of the item's few on-demand backups of the day.
    """
    if follow_up.trigger_uncertain_since is not None:
        return follow_up.trigger_uncertain_since
    if follow_up.attempt or follow_up.throttled:
        return follow_up.requested_at
    return None


def after_trigger(follow_up: FollowUp, accepted: Accepted, now: datetime, settings: Settings) -> Decision:
    polling = follow_up.enter(
        Phase.OPERATION, now,
        async_operation_url=accepted.async_operation_url,
        location_url=accepted.location_url,
        triggered_at=now,
        trigger_uncertain_since=None,
    )
    wait = accepted.retry_after if accepted.retry_after is not None else settings.poll_interval_seconds
    deadline_in = (phase_deadline(polling, settings) - now).total_seconds()
    return Continue(polling, delay_within(wait, floor=settings.min_delay_seconds, deadline_in=deadline_in))


def after_job_lookup(follow_up: FollowUp, job_id: str | None, now: datetime, settings: Settings) -> Decision:
    """A job was looked for by listing: after an unseen trigger answer, or after ``Location`` said done."""
    if job_id is None:
        if follow_up.phase is Phase.TRIGGER:
            raise ValueError("a trigger with no job found must be sent, not decided")
        # Location reported success without a job id and the job list does not show it: the list
        # may lag behind, so look a few times before settling for Triggered without a job id.
        if follow_up.polls + 1 < JOB_LOOKUP_TRIES:
            return Continue(follow_up.advance(polls=follow_up.polls + 1),
                            delay_within(settings.poll_interval_seconds, floor=settings.min_delay_seconds))
        return Finish(ResultStatus.TRIGGERED, follow_up)
    found = follow_up.enter(
        Phase.JOB, now, job_id=job_id,
        triggered_at=follow_up.triggered_at or follow_up.trigger_uncertain_since or now,
        trigger_uncertain_since=None,
    )
    if not settings.track_backup_jobs:
        return Finish(ResultStatus.TRIGGERED, found)
    return Continue(found, delay_within(settings.job_poll_initial_seconds, floor=settings.min_delay_seconds))


def after_operation(
    follow_up: FollowUp, snapshot: OperationSnapshot, retry_after: float | None, now: datetime, settings: Settings
) -> Decision:
    seen = follow_up.advance(polls=follow_up.polls + 1, attempt=0, last_state=dict(snapshot.summary))
    match snapshot.status:
        case OperationStatus.SUCCEEDED:
            if snapshot.job_id is None:
                return Finish(ResultStatus.TRIGGERED, seen)
            return after_job_lookup(seen, snapshot.job_id, now, settings)
        case OperationStatus.FAILED if snapshot.error is not None and snapshot.error.code in IN_PROGRESS_CODES:
            return wait_for_running_backup(seen, now, settings)
        case OperationStatus.FAILED | OperationStatus.INVALID:
            ended = f"the backup operation ended {snapshot.status.value}"
            error = snapshot.error or ErrorInfo("OperationFailed", ended)
            return Finish(ResultStatus.FAILED, seen, error=error)
        case OperationStatus.CANCELED:
            return Finish(ResultStatus.CANCELLED, seen, error=snapshot.error)
        case _:
            wait = retry_after if retry_after is not None else settings.poll_interval_seconds
            return keep_polling(seen, wait, now, settings, "OperationTimedOut")


def after_location(follow_up: FollowUp, snapshot: LocationSnapshot, now: datetime, settings: Settings) -> Decision:
    seen = follow_up.advance(polls=follow_up.polls + 1, attempt=0)
    if not snapshot.done:
        wait = snapshot.retry_after if snapshot.retry_after is not None else settings.poll_interval_seconds
        return keep_polling(seen, wait, now, settings, "OperationTimedOut")
    if not settings.track_backup_jobs:
        return Finish(ResultStatus.TRIGGERED, seen)
    # operationResults names no job: look it up by listing the vault's jobs in the job phase.
    return Continue(seen.enter(Phase.JOB, now), settings.min_delay_seconds)


def after_job(
    follow_up: FollowUp, snapshot: JobSnapshot, retry_after: float | None, now: datetime, settings: Settings
) -> Decision:
    seen = follow_up.advance(polls=follow_up.polls + 1, attempt=0, last_state=dict(snapshot.summary))
    ended = _JOB_ENDS.get(snapshot.status)
    if ended is ResultStatus.FAILED and snapshot.error is not None and snapshot.error.code in IN_PROGRESS_CODES:
        return wait_for_running_backup(seen, now, settings)
    if ended is not None:
        error = snapshot.error
        if ended is ResultStatus.FAILED and error is None:
            error = ErrorInfo("JobFailed", f"the backup job ended {snapshot.status.value}")
        return Finish(ended, seen, error=error, job=dict(snapshot.summary))
    interval = job_poll_interval(seen.polls, settings)
    return keep_polling(seen, max(interval, retry_after or 0), now, settings, "JobTimedOut")


def job_poll_interval(polls: int, settings: Settings) -> int:
    """Jobs run for minutes to many hours: look again less and less often, up to the cap."""
    return int(min(settings.job_poll_max_seconds, settings.job_poll_initial_seconds * 2 ** min(max(polls - 1, 0), 20)))


def wait_for_running_backup(follow_up: FollowUp, now: datetime, settings: Settings) -> Decision:
    """Azure says another backup of the item is running: wait it out, then trigger (never fail for it).

    What this request had started is void (the service refused it), so the wait starts clean.
    """
    waiting = follow_up.enter(
        Phase.WAIT, now, async_operation_url=None, location_url=None, job_id=None, triggered_at=None,
        trigger_uncertain_since=None,
    )
    return Continue(waiting, settings.min_delay_seconds)


def after_transient(
    follow_up: FollowUp, error: TransientError, now: datetime, settings: Settings, rng: random.Random
) -> Decision:
    # A 429 is ARM pacing us, not failing: it is bounded by the deadline, not by the attempts.
    throttled = isinstance(error, ArmThrottled)
    attempt = follow_up.attempt + (0 if throttled else 1)
    throttles = follow_up.throttled + 1 if throttled else 0
    uncertain_since = follow_up.trigger_uncertain_since
    if follow_up.phase is Phase.TRIGGER and _trigger_may_have_acted(error):
        uncertain_since = uncertain_since or now
    failed = follow_up.advance(
        attempt=attempt, throttled=throttles, last_error=error.info, trigger_uncertain_since=uncertain_since
    )
    deadline_in = (phase_deadline(failed, settings) - now).total_seconds()
    if attempt >= settings.retry_max_attempts or deadline_in <= 0:
        return Finish(ResultStatus.FAILED, failed, error=error.info)
    wait = error.retry_after
    if wait is None:
        wait = backoff_seconds(
            attempt + throttles, base=settings.retry_base_seconds, cap=settings.retry_max_seconds, rng=rng
        )
    elif throttled:
        # Everyone throttled together is told the same Retry-After; spread them out past it.
        wait += rng.uniform(0, max(wait, 1.0) / 2)
    return Continue(failed, delay_within(wait, floor=settings.min_delay_seconds, deadline_in=deadline_in))


def _trigger_may_have_acted(error: TransientError) -> bool:
    """Whether a failed POST may still have started a backup (so a retry must look first).

    Only a 429 (ARM throttles before forwarding), a 401 (refused at the front door) and a
    connection that never opened are known not to have reached the backup service; a 5xx,
    a 408 or a lost answer may come from after it acted.
    """
    if isinstance(error, ArmUnreachable):
        return error.request_may_have_arrived
    if isinstance(error, ArmUnavailable):
        return not isinstance(error, ArmThrottled) and error.info.http_status not in {401, None}
    return False


def after_permanent(follow_up: FollowUp, error: PermanentError, now: datetime, settings: Settings) -> Decision:
    if follow_up.phase is Phase.TRIGGER and error.info.code in IN_PROGRESS_CODES:
        return wait_for_running_backup(follow_up, now, settings)
    return Finish(ResultStatus.FAILED, follow_up.advance(last_error=error.info), error=error.info)


def keep_polling(
    follow_up: FollowUp, wait: float, now: datetime, settings: Settings, timeout_code: str
) -> Decision:
    deadline_in = (phase_deadline(follow_up, settings) - now).total_seconds()
    if deadline_in <= 0:
        what = {Phase.JOB: "the backup job", Phase.WAIT: "another backup of the item"}.get(
            follow_up.phase, "the backup operation"
        )
        error = ErrorInfo(timeout_code, f"{what} was still running when its deadline passed")
        return Finish(ResultStatus.TIMED_OUT, follow_up, error=error)
    return Continue(follow_up, delay_within(wait, floor=settings.min_delay_seconds, deadline_in=deadline_in))
