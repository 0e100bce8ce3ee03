"""shared.waiting: the WAIT phase, watching another key's record or a running job, then join or trigger."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.backup import Decision
from shared.errors import ErrorInfo
from shared.followup import FollowUp, Phase
from shared.ledger import Fingerprint, RequestRecord
from shared.results import ResultStatus, finished
from shared.statuses import JobSnapshot, JobStatus
from shared.waiting import after_running_job_lookup, after_watched_job, after_watched_request
from tests.unit.builders import NOW, backup_request, follow_up, make_settings, result_of
from tests.unit.decisions import assert_entered, continued, ended

DEFAULTS = make_settings()
OWNER_KEY = "owner-key"
OWNER_JOB = "6f4b3c1e-0000-4000-8000-0000000000aa"
JOB_SUMMARY = {"status": "Completed", "operation": "Backup", "startTime": "2026-11-26T11:40:04Z",
               "endTime": "2026-11-26T12:20:10Z", "duration": "PT40M6S"}
OWNER_TRIGGERED = NOW - timedelta(minutes=20)
SCHEDULE = [60, 120, 240, 480, 900, 900, 900]
"""JOB_POLL_INITIAL_SECONDS doubling up to JOB_POLL_MAX_SECONDS (defaults 60 and 900)."""
STILL_RUNNING = {JobStatus.IN_PROGRESS, JobStatus.CANCELLING, JobStatus.UNKNOWN}


def waiting(*, joining: bool = False, key: str | None = OWNER_KEY, started: datetime = NOW, **changes: Any) -> FollowUp:
    return follow_up(Phase.WAIT, started=started, request=backup_request(correlationId="joiner"),
                     waiting_for_key=key, joining=joining, step=6, **changes)


def owner(
    status: ResultStatus | None = None,
    *,
    job_id: str | None = OWNER_JOB,
    error: ErrorInfo | None = None,
    job: dict[str, Any] | None = None,
) -> RequestRecord:
    """The owner's ledger record: running when ``status`` is None, else finished with a real result."""
    request = backup_request(correlationId=OWNER_KEY)
    running = RequestRecord(
        key=OWNER_KEY, item_id=request.item.id, fingerprint=Fingerprint.of(request), step=4, written_by=3,
        holder="m-owner", phase="job", created_at=NOW - timedelta(minutes=21), job_id=job_id,
    )
    if status is None:
        return running
    owner_follow_up = follow_up(Phase.JOB, request=request, started=NOW - timedelta(minutes=21), job_id=job_id,
                                triggered_at=OWNER_TRIGGERED)
    text = finished(owner_follow_up, status, NOW - timedelta(minutes=1), error=error, job=job)
    return replace(running, phase="finished", status=status.value, result=text, result_sent=True)


def assert_triggers_now(decision: Decision, before: FollowUp, now: datetime = NOW) -> None:
    """The wait is over: a clean TRIGGER phase at the floor delay."""
    assert_entered(decision, Phase.TRIGGER, before, now, DEFAULTS.min_delay_seconds)


# --- after_watched_request: the owner still runs ---------------------------------------------


@pytest.mark.parametrize("joining", [False, True])
def test_while_the_owner_runs_the_wait_follows_the_job_poll_schedule(joining: bool) -> None:
    current, now, delays = waiting(joining=joining), NOW, []
    for _ in SCHEDULE:
        decision = continued(after_watched_request(current, owner(), now, DEFAULTS))
        delays.append(decision.delay_seconds)
        current = decision.follow_up
        assert (current.phase, current.waiting_for_key, current.joining) == (Phase.WAIT, OWNER_KEY, joining)
        now += timedelta(seconds=decision.delay_seconds)

    assert delays == SCHEDULE
    assert current.polls == len(SCHEDULE)


def test_a_look_at_the_owner_counts_a_poll_and_clears_the_attempts() -> None:
    decision = continued(after_watched_request(waiting(polls=2, attempt=3), owner(), NOW, DEFAULTS))

    assert (decision.follow_up.polls, decision.follow_up.attempt) == (3, 0)
    assert decision.delay_seconds == 240


def test_the_last_look_at_a_running_owner_is_at_the_deadline() -> None:
    started = NOW - timedelta(seconds=DEFAULTS.job_timeout_seconds - 100)

    decision = continued(after_watched_request(waiting(started=started, polls=8), owner(), NOW, DEFAULTS))

    assert decision.delay_seconds == 100


@pytest.mark.parametrize("past", [timedelta(0), timedelta(hours=1)])
def test_a_wait_past_its_deadline_times_out(past: timedelta) -> None:
    started = NOW - timedelta(seconds=DEFAULTS.job_timeout_seconds) - past

    decision = ended(after_watched_request(waiting(started=started), owner(), NOW, DEFAULTS))

    assert decision.status is ResultStatus.TIMED_OUT
    assert decision.error is not None and decision.error.code == "WaitTimedOut"
    assert decision.joined is None


def test_a_stamped_deadline_wins_over_the_settings() -> None:
    deadline = NOW + timedelta(seconds=30)

    decision = continued(after_watched_request(waiting(deadline=deadline, polls=5), owner(), NOW, DEFAULTS))
    assert decision.delay_seconds == 30
    assert ended(after_watched_request(waiting(deadline=NOW), owner(), NOW, DEFAULTS)).status is ResultStatus.TIMED_OUT


# --- after_watched_request: the owner ended ----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (ResultStatus.SUCCEEDED, None),
        (ResultStatus.COMPLETED_WITH_WARNINGS, None),
        (ResultStatus.FAILED, ErrorInfo("UserErrorVmNotShutDown", "the VM was not shut down", target="vm")),
        (ResultStatus.CANCELLED, None),
        (ResultStatus.TIMED_OUT, ErrorInfo("JobTimedOut", "still running")),
        (ResultStatus.TRIGGERED, None),
    ],
)
def test_a_joined_request_reports_the_owners_outcome_as_its_own(status: ResultStatus, error: ErrorInfo | None) -> None:
    job = {**JOB_SUMMARY, "status": status.value}
    before = waiting(joining=True)

    decision = ended(after_watched_request(before, owner(status, error=error, job=job), NOW, DEFAULTS))

    assert decision.status is status
    assert decision.joined == OWNER_KEY
    assert decision.job == job
    assert decision.error == error
    assert decision.follow_up.job_id == OWNER_JOB
    assert decision.follow_up.triggered_at == OWNER_TRIGGERED
    assert decision.follow_up.request == before.request  # reported under the joiner's own key


def test_the_joined_result_names_the_owner_and_its_job() -> None:
    decision = ended(after_watched_request(waiting(joining=True), owner(ResultStatus.SUCCEEDED, job=JOB_SUMMARY),
                                           NOW, DEFAULTS))

    document = result_of(finished(decision.follow_up, decision.status, NOW, error=decision.error, job=decision.job,
                                  joined=decision.joined))

    assert (document["status"], document["correlationId"], document["joined"]) == ("Succeeded", "joiner", OWNER_KEY)
    assert (document["jobId"], document["job"]) == (OWNER_JOB, JOB_SUMMARY)
    assert document["timings"]["triggeredAt"] == "2026-11-26T11:40:00Z"


def test_a_joined_owner_record_without_a_status_column_uses_its_results_status() -> None:
    finished_owner = replace(owner(ResultStatus.CANCELLED, job=JOB_SUMMARY), status=None)

    assert ended(after_watched_request(waiting(joining=True), finished_owner, NOW, DEFAULTS)).status is (
        ResultStatus.CANCELLED)


@pytest.mark.parametrize(
    "ended_owner",
    [
        owner(ResultStatus.FAILED, job_id=None, error=ErrorInfo("CloudDosAbsoluteLimitReached", "limit")),
        owner(ResultStatus.REJECTED, job_id=None, error=ErrorInfo("InvalidRequest", "bad")),
        None,
    ],
    ids=["owner failed before a job", "owner rejected", "owner gone"],
)
def test_a_joiner_whose_owner_has_no_job_to_share_triggers_its_own(ended_owner: RequestRecord | None) -> None:
    before = waiting(joining=True, polls=4)

    assert_triggers_now(after_watched_request(before, ended_owner, NOW, DEFAULTS), before)


@pytest.mark.parametrize(
    "ended_owner",
    [owner(ResultStatus.SUCCEEDED, job=JOB_SUMMARY), owner(ResultStatus.FAILED, error=ErrorInfo("X", "y")), None],
    ids=["owner succeeded", "owner failed", "owner gone"],
)
def test_a_request_waiting_for_a_different_backup_triggers_once_it_ended(ended_owner: RequestRecord | None) -> None:
    before = waiting(joining=False, polls=4)

    assert_triggers_now(after_watched_request(before, ended_owner, NOW, DEFAULTS), before)


def test_an_owner_that_ended_after_the_deadline_still_lets_the_request_trigger() -> None:
    before = waiting(started=NOW - timedelta(days=3))

    assert_triggers_now(after_watched_request(before, owner(ResultStatus.SUCCEEDED), NOW, DEFAULTS), before)


# --- after_running_job_lookup ----------------------------------------------------------------


def test_a_running_job_found_is_watched_on_the_job_poll_schedule() -> None:
    before = waiting(key=None)

    decision = continued(after_running_job_lookup(before, "running-job", NOW, DEFAULTS))

    assert decision.follow_up.phase is Phase.WAIT
    assert decision.follow_up.waiting_for_job == "running-job"
    assert decision.follow_up.polls == 1
    assert decision.delay_seconds == SCHEDULE[0]


def test_no_running_job_listed_any_more_triggers_now() -> None:
    before = waiting(key=None, polls=1)

    assert_triggers_now(after_running_job_lookup(before, None, NOW, DEFAULTS), before)


def test_a_running_job_found_after_the_deadline_times_out() -> None:
    started = NOW - timedelta(seconds=DEFAULTS.job_timeout_seconds + 1)

    decision = ended(after_running_job_lookup(waiting(key=None, started=started), "running-job", NOW, DEFAULTS))

    assert decision.status is ResultStatus.TIMED_OUT
    assert decision.error is not None and decision.error.code == "WaitTimedOut"


# --- after_watched_job -----------------------------------------------------------------------


def job(status: JobStatus) -> JobSnapshot:
    return JobSnapshot("running-job", status, None, {"status": status.value, "operation": "Backup"})


@pytest.mark.parametrize("status", list(JobStatus))
def test_a_watched_job_keeps_the_wait_while_it_runs_and_ends_it_when_it_ends(status: JobStatus) -> None:
    before = waiting(key=None, waiting_for_job="running-job", polls=1)

    decision = after_watched_job(before, job(status), None, NOW, DEFAULTS)

    if status in STILL_RUNNING:
        still = continued(decision)
        assert (still.follow_up.phase, still.follow_up.waiting_for_job) == (Phase.WAIT, "running-job")
        assert (still.follow_up.polls, still.delay_seconds) == (2, SCHEDULE[1])
    else:
        assert_triggers_now(decision, before)


def test_a_watched_job_is_polled_less_and_less_often() -> None:
    current, now, delays = waiting(key=None, waiting_for_job="running-job"), NOW, []
    for _ in SCHEDULE:
        decision = continued(after_watched_job(current, job(JobStatus.IN_PROGRESS), None, now, DEFAULTS))
        delays.append(decision.delay_seconds)
        current, now = decision.follow_up, now + timedelta(seconds=decision.delay_seconds)

    assert delays == SCHEDULE


@pytest.mark.parametrize(("retry_after", "delay"), [(30.0, 120), (500.0, 500), (None, 120)])
def test_a_watched_jobs_retry_after_is_a_floor(retry_after: float | None, delay: int) -> None:
    before = waiting(key=None, waiting_for_job="running-job", polls=1)

    assert continued(after_watched_job(before, job(JobStatus.IN_PROGRESS), retry_after, NOW, DEFAULTS)).delay_seconds \
        == delay


def test_a_watched_job_still_running_at_the_deadline_times_out() -> None:
    started = NOW - timedelta(seconds=DEFAULTS.job_timeout_seconds)
    before = waiting(key=None, waiting_for_job="running-job", started=started)

    decision = ended(after_watched_job(before, job(JobStatus.IN_PROGRESS), None, NOW, DEFAULTS))

    assert decision.status is ResultStatus.TIMED_OUT
    assert decision.error is not None and decision.error.code == "WaitTimedOut"


def test_the_owners_result_is_read_not_trusted_blindly() -> None:
    # A result without timings or job: the joiner still reports, with what it knows itself.
    bare = replace(owner(ResultStatus.SUCCEEDED), result=json.dumps({"status": "Succeeded"}))
    before = waiting(joining=True, triggered_at=None)

    decision = ended(after_watched_request(before, bare, NOW, DEFAULTS))

    assert (decision.status, decision.job, decision.error, decision.joined) == (
        ResultStatus.SUCCEEDED, None, None, OWNER_KEY)
    assert decision.follow_up.triggered_at is None
