"""shared.backup, ledger changes: a running backup leads to the WAIT phase, never to Failed; job poll schedule."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.backup import (
    Decision,
    Finish,
    after_job,
    after_operation,
    after_permanent,
    job_poll_interval,
    phase_deadline,
    stamp_deadline,
    wait_for_running_backup,
)
from shared.errors import IN_PROGRESS_CODES, ArmRejected, ErrorInfo
from shared.followup import FollowUp, Phase
from shared.results import ResultStatus
from shared.statuses import JobSnapshot, JobStatus, OperationSnapshot, OperationStatus
from tests.unit.builders import NOW, follow_up, make_settings
from tests.unit.decisions import assert_entered, continued, ended

DEFAULTS = make_settings()
LATER = NOW + timedelta(minutes=7)
AO_URL = "https://management.azure.com/subscriptions/x/operationsStatus/1"
LOCATION = "https://management.azure.com/subscriptions/x/operationResults/1"
REFUSED = ErrorInfo("UserErrorGuestAgentStatusUnavailable", "VM agent is unable to communicate with the service.")
IN_PROGRESS = ["SystemBackupOperationInProgress", "UserErrorBackupOperationInProgress"]


def busy(code: str) -> ErrorInfo:
    return ErrorInfo(code, "Taking snapshot is not allowed as a backup is already in progress.", http_status=400)


def in_flight(phase: Phase, **changes: Any) -> FollowUp:
    """A request well into ``phase``: URLs, a job, counters and a deadline of its own."""
    base: dict[str, Any] = {
        "async_operation_url": AO_URL, "location_url": LOCATION, "triggered_at": NOW, "polls": 4, "attempt": 2,
        "throttled": 1, "last_error": REFUSED, "deadline": NOW + timedelta(hours=1), "step": 5,
        "trigger_uncertain_since": NOW - timedelta(seconds=30),
    }
    if phase is Phase.JOB:
        base["job_id"] = "job-1"
    return follow_up(phase).advance(**{**base, **changes})


def assert_waits_clean(decision: Decision, before: FollowUp, now: datetime = LATER) -> None:
    """The WAIT phase, started now, with nothing of the refused attempt left in it."""
    after = assert_entered(decision, Phase.WAIT, before, now, DEFAULTS.min_delay_seconds)
    assert (after.async_operation_url, after.location_url, after.job_id) == (None, None, None)
    assert (after.triggered_at, after.trigger_uncertain_since) == (None, None)


# --- wait_for_running_backup ---------------------------------------------------------------


@pytest.mark.parametrize("phase", list(Phase))
def test_waiting_for_a_running_backup_starts_clean(phase: Phase) -> None:
    before = in_flight(phase, waiting_for_key="k", waiting_for_job="j", joining=True)

    assert_waits_clean(wait_for_running_backup(before, LATER, DEFAULTS), before)


def test_the_wait_lasts_as_long_as_a_job_may() -> None:
    waiting = continued(wait_for_running_backup(in_flight(Phase.OPERATION), LATER, DEFAULTS)).follow_up

    assert phase_deadline(waiting, DEFAULTS) == LATER + timedelta(seconds=DEFAULTS.job_timeout_seconds)
    assert stamp_deadline(waiting, DEFAULTS).deadline == LATER + timedelta(seconds=DEFAULTS.job_timeout_seconds)
    settings = make_settings(JOB_TIMEOUT_SECONDS="7200", OPERATION_TIMEOUT_SECONDS="60")
    assert phase_deadline(waiting, settings) == LATER + timedelta(hours=2)


# --- the in-progress codes, wherever Azure gives them -------------------------------------------


def op(status: OperationStatus, error: ErrorInfo | None) -> OperationSnapshot:
    return OperationSnapshot(status, None, error, {"status": status.value})


@pytest.mark.parametrize("code", IN_PROGRESS)
def test_an_operation_failed_for_a_running_backup_waits(code: str) -> None:
    before = in_flight(Phase.OPERATION)

    assert_waits_clean(after_operation(before, op(OperationStatus.FAILED, busy(code)), None, LATER, DEFAULTS), before)


@pytest.mark.parametrize("status", [OperationStatus.FAILED, OperationStatus.INVALID])
def test_an_operation_failed_for_another_reason_fails(status: OperationStatus) -> None:
    decision = ended(after_operation(in_flight(Phase.OPERATION), op(status, REFUSED), None, LATER, DEFAULTS))

    assert (decision.status, decision.error, decision.joined) == (ResultStatus.FAILED, REFUSED, None)


@pytest.mark.parametrize("code", IN_PROGRESS)
def test_a_cancelled_operation_is_cancelled_even_with_an_in_progress_code(code: str) -> None:
    decision = ended(after_operation(in_flight(Phase.OPERATION), op(OperationStatus.CANCELED, busy(code)), None,
                                     LATER, DEFAULTS))

    assert decision.status is ResultStatus.CANCELLED


def job(status: JobStatus, error: ErrorInfo | None) -> JobSnapshot:
    return JobSnapshot("job-1", status, error, {"status": status.value, "operation": "Backup"})


@pytest.mark.parametrize("code", IN_PROGRESS)
@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.INVALID])
def test_a_job_failed_for_a_running_backup_waits(code: str, status: JobStatus) -> None:
    before = in_flight(Phase.JOB)

    assert_waits_clean(after_job(before, job(status, busy(code)), None, LATER, DEFAULTS), before)


@pytest.mark.parametrize("code", IN_PROGRESS)
@pytest.mark.parametrize(
    ("status", "result"),
    [(JobStatus.COMPLETED, ResultStatus.SUCCEEDED), (JobStatus.CANCELLED, ResultStatus.CANCELLED),
     (JobStatus.COMPLETED_WITH_WARNINGS, ResultStatus.COMPLETED_WITH_WARNINGS)],
)
def test_a_job_that_did_not_fail_keeps_its_outcome_whatever_its_error_says(
    code: str, status: JobStatus, result: ResultStatus
) -> None:
    assert ended(after_job(in_flight(Phase.JOB), job(status, busy(code)), None, LATER, DEFAULTS)).status is result


def test_a_job_failed_for_another_reason_fails() -> None:
    decision = ended(after_job(in_flight(Phase.JOB), job(JobStatus.FAILED, REFUSED), None, LATER, DEFAULTS))

    assert (decision.status, decision.error) == (ResultStatus.FAILED, REFUSED)


@pytest.mark.parametrize("code", IN_PROGRESS)
def test_a_post_refused_for_a_running_backup_waits(code: str) -> None:
    before = in_flight(Phase.TRIGGER, async_operation_url=None, location_url=None, triggered_at=None)

    assert_waits_clean(after_permanent(before, ArmRejected(busy(code)), LATER, DEFAULTS), before)


@pytest.mark.parametrize("code", IN_PROGRESS)
@pytest.mark.parametrize("phase", [Phase.OPERATION, Phase.JOB, Phase.WAIT])
def test_an_in_progress_refusal_of_a_get_is_a_failure_not_a_wait(code: str, phase: Phase) -> None:
    # Only the trigger POST is refused because of another backup; a GET refused so is something else.
    decision = ended(after_permanent(in_flight(phase), ArmRejected(busy(code)), LATER, DEFAULTS))

    assert (decision.status, decision.error) == (ResultStatus.FAILED, busy(code))
    assert decision.follow_up.last_error == busy(code)


def test_a_post_refused_for_another_reason_fails() -> None:
    decision = ended(after_permanent(in_flight(Phase.TRIGGER), ArmRejected(REFUSED), LATER, DEFAULTS))

    assert (decision.status, decision.error) == (ResultStatus.FAILED, REFUSED)


def test_only_the_two_documented_codes_mean_in_progress() -> None:
    assert set(IN_PROGRESS) == IN_PROGRESS_CODES


# --- job_poll_interval, Finish.joined --------------------------------------------------------


@pytest.mark.parametrize(
    ("polls", "seconds"),
    [(0, 60), (1, 60), (2, 120), (3, 240), (4, 480), (5, 900), (6, 900), (50, 900), (10_000, 900)],
)
def test_job_poll_interval_doubles_from_the_initial_up_to_the_cap(polls: int, seconds: int) -> None:
    assert job_poll_interval(polls, DEFAULTS) == seconds


def test_job_poll_interval_follows_the_settings() -> None:
    settings = make_settings(JOB_POLL_INITIAL_SECONDS="7", JOB_POLL_MAX_SECONDS="50")

    assert [job_poll_interval(polls, settings) for polls in range(1, 7)] == [7, 14, 28, 50, 50, 50]


def test_job_poll_interval_never_exceeds_a_huge_cap_by_overflowing() -> None:
    settings = make_settings(JOB_POLL_INITIAL_SECONDS="1", JOB_POLL_MAX_SECONDS=str(10**12))

    assert job_poll_interval(10**6, settings) == 2**20
    assert isinstance(job_poll_interval(10**6, settings), int)


def test_a_finish_joins_nothing_unless_told() -> None:
    assert Finish(ResultStatus.SUCCEEDED, follow_up()).joined is None
    assert Finish(ResultStatus.SUCCEEDED, follow_up(), joined="k").joined == "k"
