"""shared.backup: the pure rules deciding what happens after each answer or failure."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.arm import Accepted, LocationSnapshot
from shared.backup import (
    JOB_LOOKUP_TRIES,
    Continue,
    Finish,
    after_job,
    after_job_lookup,
    after_location,
    after_operation,
    after_permanent,
    after_transient,
    after_trigger,
    phase_deadline,
    stamp_deadline,
)
from shared.errors import (
    ArmProtocolError,
    ArmRejected,
    ArmThrottled,
    ArmUnavailable,
    ArmUnreachable,
    ErrorInfo,
    TokenUnavailable,
    TransientError,
    UntrustedUrl,
)
from shared.followup import FollowUp, Phase
from shared.results import ResultStatus
from shared.statuses import JobSnapshot, JobStatus, OperationSnapshot, OperationStatus
from shared.timing import MAX_QUEUE_DELAY_SECONDS, backoff_seconds, delay_within
from tests.unit.builders import NOW, follow_up, make_settings
from tests.unit.decisions import continued, ended

DEFAULTS = make_settings()
AO_URL = "https://management.azure.com/subscriptions/x/operationsStatus/1"
LOCATION = "https://management.azure.com/subscriptions/x/operationResults/1"
IN_PROGRESS_OP = OperationSnapshot(OperationStatus.IN_PROGRESS, None, None, {"status": "InProgress"})
BUSY = ErrorInfo("UserErrorBackupOperationInProgress", "Taking snapshot is not allowed as a backup is in progress.")
REFUSED = ErrorInfo("UserErrorGuestAgentStatusUnavailable", "VM agent is unable to communicate with the service.")


finished = ended  # the name these tests read best with


def polling(phase: Phase = Phase.OPERATION, *, started: datetime = NOW, **changes: Any) -> FollowUp:
    base: dict[str, Any] = {"async_operation_url": AO_URL, "location_url": LOCATION, "triggered_at": NOW}
    if phase is Phase.JOB:
        base["job_id"] = "job-1"
    return follow_up(phase, started=started).advance(**{**base, **changes})


def op(status: OperationStatus, job_id: str | None = None, error: ErrorInfo | None = None) -> OperationSnapshot:
    return OperationSnapshot(status, job_id, error, {"status": status.value, "startTime": "2026-11-26T12:00:01Z"})


def job(status: JobStatus, error: ErrorInfo | None = None) -> JobSnapshot:
    return JobSnapshot("job-1", status, error, {"status": status.value, "operation": "Backup"})


# --- phase_deadline ------------------------------------------------------------------------


@pytest.mark.parametrize(("phase", "seconds"), [(Phase.TRIGGER, 6 * 3600), (Phase.OPERATION, 6 * 3600),
                                                (Phase.JOB, 48 * 3600)])
def test_phase_deadline(phase: Phase, seconds: int) -> None:
    started = NOW - timedelta(hours=1)
    assert phase_deadline(follow_up(phase, started=started), DEFAULTS) == started + timedelta(seconds=seconds)


# --- after_trigger -------------------------------------------------------------------------


def test_after_trigger_uses_retry_after_and_enters_the_operation_phase() -> None:
    before = follow_up(Phase.TRIGGER, attempt=3, trigger_uncertain_since=NOW - timedelta(minutes=1),
                       last_error=BUSY)
    later = NOW + timedelta(minutes=5)

    decision = continued(after_trigger(before, Accepted(AO_URL, LOCATION, 60.0, "req"), later, DEFAULTS))

    assert decision.delay_seconds == 60
    after = decision.follow_up
    assert after.phase is Phase.OPERATION
    assert (after.async_operation_url, after.location_url) == (AO_URL, LOCATION)
    assert after.triggered_at == later
    assert after.phase_started_at == later
    assert after.requested_at == NOW
    assert (after.attempt, after.polls, after.last_error, after.trigger_uncertain_since) == (0, 0, None, None)


@pytest.mark.parametrize(
    ("retry_after", "overrides", "delay"),
    [
        (None, {}, 30),
        (None, {"POLL_INTERVAL_SECONDS": "45"}, 45),
        (None, {"POLL_INTERVAL_SECONDS": "2"}, 5),
        (1.0, {}, 5),
        (0.0, {}, 5),
        (0.2, {"MIN_DELAY_SECONDS": "0"}, 1),
        (7.5, {}, 8),
        (60.0, {"MIN_DELAY_SECONDS": "90"}, 90),
        (1e9, {}, 6 * 3600),
        (1e9, {"OPERATION_TIMEOUT_SECONDS": str(30 * 24 * 3600)}, MAX_QUEUE_DELAY_SECONDS),
        (600.0, {"OPERATION_TIMEOUT_SECONDS": "100"}, 100),
        (600.0, {"OPERATION_TIMEOUT_SECONDS": "2"}, 5),
    ],
)
def test_after_trigger_delay(retry_after: float | None, overrides: dict[str, str], delay: int) -> None:
    decision = after_trigger(follow_up(), Accepted(AO_URL, None, retry_after, None), NOW, make_settings(**overrides))

    assert continued(decision).delay_seconds == delay


# --- after_operation -----------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "delay"), [({}, 60), ({"JOB_POLL_INITIAL_SECONDS": "120"}, 120),
                                                  ({"JOB_POLL_INITIAL_SECONDS": "2"}, 5)])
def test_succeeded_with_job_id_enters_the_job_phase(overrides: dict[str, str], delay: int) -> None:
    before = polling(polls=4, attempt=2)
    later = NOW + timedelta(minutes=2)

    decision = continued(after_operation(before, op(OperationStatus.SUCCEEDED, "job-9"), 20.0, later,
                                         make_settings(**overrides)))

    assert decision.delay_seconds == delay
    after = decision.follow_up
    assert (after.phase, after.job_id, after.phase_started_at) == (Phase.JOB, "job-9", later)
    assert (after.polls, after.attempt) == (0, 0)
    assert after.triggered_at == NOW


def test_succeeded_with_job_id_and_tracking_off_is_triggered() -> None:
    decision = finished(after_operation(polling(), op(OperationStatus.SUCCEEDED, "job-9"), None, NOW,
                                        make_settings(TRACK_BACKUP_JOBS="false")))

    assert decision.status is ResultStatus.TRIGGERED
    assert decision.follow_up.job_id == "job-9"
    assert decision.error is None


def test_succeeded_without_job_id_is_triggered() -> None:
    decision = finished(after_operation(polling(), op(OperationStatus.SUCCEEDED), None, NOW, DEFAULTS))

    assert decision.status is ResultStatus.TRIGGERED
    assert decision.follow_up.job_id is None
    assert decision.follow_up.last_state == {"status": "Succeeded", "startTime": "2026-11-26T12:00:01Z"}


@pytest.mark.parametrize("status", [OperationStatus.FAILED, OperationStatus.INVALID])
def test_failed_operation_carries_its_error(status: OperationStatus) -> None:
    decision = finished(after_operation(polling(), op(status, error=REFUSED), None, NOW, DEFAULTS))

    assert decision.status is ResultStatus.FAILED
    assert decision.error == REFUSED
    assert decision.job is None


@pytest.mark.parametrize("status", [OperationStatus.FAILED, OperationStatus.INVALID])
def test_failed_operation_without_error(status: OperationStatus) -> None:
    decision = finished(after_operation(polling(), op(status), None, NOW, DEFAULTS))

    assert decision.status is ResultStatus.FAILED
    assert decision.error is not None
    assert decision.error.code == "OperationFailed"
    assert status.value in decision.error.message


@pytest.mark.parametrize("error", [None, ErrorInfo("OperationCancelled", "by user")])
def test_canceled_operation_is_cancelled(error: ErrorInfo | None) -> None:
    decision = finished(after_operation(polling(), op(OperationStatus.CANCELED, error=error), None, NOW, DEFAULTS))

    assert decision.status is ResultStatus.CANCELLED
    assert decision.error == error


@pytest.mark.parametrize("status", [OperationStatus.IN_PROGRESS, OperationStatus.UNKNOWN])
@pytest.mark.parametrize(("retry_after", "delay"), [(20.0, 20), (None, 30), (0.5, 5), (3600.0, 3600)])
def test_running_operation_keeps_polling(status: OperationStatus, retry_after: float | None, delay: int) -> None:
    before = polling(polls=2, attempt=1)

    decision = continued(after_operation(before, op(status), retry_after, NOW + timedelta(minutes=1), DEFAULTS))

    assert decision.delay_seconds == delay
    assert decision.follow_up.phase is Phase.OPERATION
    assert (decision.follow_up.polls, decision.follow_up.attempt) == (3, 0)
    assert decision.follow_up.last_state == {"status": status.value, "startTime": "2026-11-26T12:00:01Z"}


def test_operation_poll_never_waits_past_the_deadline() -> None:
    started = NOW - timedelta(seconds=DEFAULTS.operation_timeout_seconds - 10)

    decision = continued(after_operation(polling(started=started), op(OperationStatus.IN_PROGRESS), 60.0, NOW,
                                         DEFAULTS))

    assert decision.delay_seconds == 10


@pytest.mark.parametrize("past", [0, 1, 3600])
def test_operation_past_its_deadline_times_out_with_the_last_state(past: int) -> None:
    started = NOW - timedelta(seconds=DEFAULTS.operation_timeout_seconds + past)

    decision = finished(after_operation(polling(started=started), op(OperationStatus.IN_PROGRESS), 60.0, NOW,
                                        DEFAULTS))

    assert decision.status is ResultStatus.TIMED_OUT
    assert decision.error is not None
    assert decision.error.code == "OperationTimedOut"
    assert decision.follow_up.last_state == {"status": "InProgress", "startTime": "2026-11-26T12:00:01Z"}


def test_operation_timeout_setting() -> None:
    settings = make_settings(OPERATION_TIMEOUT_SECONDS="600")
    decision = after_operation(polling(started=NOW - timedelta(seconds=600)), IN_PROGRESS_OP, None, NOW, settings)

    assert finished(decision).status is ResultStatus.TIMED_OUT


# --- after_location ------------------------------------------------------------------------


@pytest.mark.parametrize(("retry_after", "delay"), [(15.0, 15), (None, 30), (1.0, 5)])
def test_location_not_done_keeps_polling(retry_after: float | None, delay: int) -> None:
    before = polling(async_operation_url=None, polls=1, attempt=2)

    decision = continued(after_location(before, LocationSnapshot(False, retry_after), NOW, DEFAULTS))

    assert decision.delay_seconds == delay
    assert decision.follow_up.phase is Phase.OPERATION
    assert (decision.follow_up.polls, decision.follow_up.attempt) == (2, 0)


def test_location_done_looks_the_job_up_in_the_job_phase() -> None:
    later = NOW + timedelta(minutes=3)

    decision = continued(after_location(polling(async_operation_url=None), LocationSnapshot(True, 30.0), later,
                                        DEFAULTS))

    assert decision.delay_seconds == DEFAULTS.min_delay_seconds
    assert decision.follow_up.phase is Phase.JOB
    assert decision.follow_up.job_id is None
    assert decision.follow_up.phase_started_at == later


def test_location_done_with_tracking_off_is_triggered() -> None:
    decision = finished(after_location(polling(async_operation_url=None), LocationSnapshot(True, None), NOW,
                                       make_settings(TRACK_BACKUP_JOBS="false")))

    assert decision.status is ResultStatus.TRIGGERED


def test_location_past_the_deadline_times_out() -> None:
    started = NOW - timedelta(seconds=DEFAULTS.operation_timeout_seconds)

    decision = finished(after_location(polling(started=started), LocationSnapshot(False, 10.0), NOW, DEFAULTS))

    assert decision.status is ResultStatus.TIMED_OUT
    assert decision.error is not None
    assert decision.error.code == "OperationTimedOut"


# --- after_job -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "result"),
    [
        (JobStatus.COMPLETED, ResultStatus.SUCCEEDED),
        (JobStatus.COMPLETED_WITH_WARNINGS, ResultStatus.COMPLETED_WITH_WARNINGS),
        (JobStatus.FAILED, ResultStatus.FAILED),
        (JobStatus.INVALID, ResultStatus.FAILED),
        (JobStatus.CANCELLED, ResultStatus.CANCELLED),
    ],
)
def test_ended_jobs(status: JobStatus, result: ResultStatus) -> None:
    decision = finished(after_job(polling(Phase.JOB), job(status), None, NOW, DEFAULTS))

    assert decision.status is result
    assert decision.job == {"status": status.value, "operation": "Backup"}
    assert decision.follow_up.last_state == decision.job
    if result is ResultStatus.FAILED:
        assert decision.error is not None
        assert decision.error.code == "JobFailed"
        assert status.value in decision.error.message
    else:
        assert decision.error is None


def test_failed_job_carries_its_error() -> None:
    error = REFUSED
    decision = finished(after_job(polling(Phase.JOB), job(JobStatus.FAILED, error), None, NOW, DEFAULTS))

    assert decision.error == error


def test_completed_with_warnings_keeps_the_warning_details() -> None:
    warning = ErrorInfo("UserErrorSomeFilesSkipped", "some files skipped")
    decision = finished(after_job(polling(Phase.JOB), job(JobStatus.COMPLETED_WITH_WARNINGS, warning), None, NOW,
                                  DEFAULTS))

    assert decision.status is ResultStatus.COMPLETED_WITH_WARNINGS
    assert decision.error == warning


@pytest.mark.parametrize("status", [JobStatus.IN_PROGRESS, JobStatus.CANCELLING, JobStatus.UNKNOWN])
def test_running_jobs_keep_polling(status: JobStatus) -> None:
    decision = continued(after_job(polling(Phase.JOB, attempt=3), job(status), None, NOW, DEFAULTS))

    assert decision.follow_up.phase is Phase.JOB
    assert (decision.follow_up.polls, decision.follow_up.attempt) == (1, 0)


@pytest.mark.parametrize(
    ("polls_before", "delay"),
    [(0, 60), (1, 120), (2, 240), (3, 480), (4, 900), (5, 900), (30, 900), (10_000, 900)],
)
def test_job_poll_interval_doubles_up_to_the_cap(polls_before: int, delay: int) -> None:
    decision = continued(after_job(polling(Phase.JOB, polls=polls_before), job(JobStatus.IN_PROGRESS), None, NOW,
                                   DEFAULTS))

    assert decision.delay_seconds == delay


def test_job_poll_interval_grows_over_a_walk() -> None:
    settings = make_settings(JOB_POLL_INITIAL_SECONDS="10", JOB_POLL_MAX_SECONDS="100")
    current, now, delays = polling(Phase.JOB), NOW, []
    for _ in range(7):
        decision = continued(after_job(current, job(JobStatus.IN_PROGRESS), None, now, settings))
        delays.append(decision.delay_seconds)
        current, now = decision.follow_up, now + timedelta(seconds=decision.delay_seconds)

    assert delays == [10, 20, 40, 80, 100, 100, 100]


@pytest.mark.parametrize(("polls_before", "retry_after", "delay"), [(0, 300.0, 300), (3, 300.0, 480),
                                                                    (0, 59.5, 60), (0, 60.5, 61)])
def test_job_poll_waits_at_least_retry_after(polls_before: int, retry_after: float, delay: int) -> None:
    decision = continued(after_job(polling(Phase.JOB, polls=polls_before), job(JobStatus.IN_PROGRESS), retry_after,
                                   NOW, DEFAULTS))

    assert decision.delay_seconds == delay


def test_job_poll_never_waits_past_the_deadline() -> None:
    started = NOW - timedelta(seconds=DEFAULTS.job_timeout_seconds - 30)

    decision = continued(after_job(polling(Phase.JOB, started=started, polls=6), job(JobStatus.IN_PROGRESS), None,
                                   NOW, DEFAULTS))

    assert decision.delay_seconds == 30


def test_job_past_its_deadline_times_out() -> None:
    started = NOW - timedelta(seconds=DEFAULTS.job_timeout_seconds)

    decision = finished(after_job(polling(Phase.JOB, started=started), job(JobStatus.IN_PROGRESS), None, NOW,
                                  DEFAULTS))

    assert decision.status is ResultStatus.TIMED_OUT
    assert decision.error is not None
    assert decision.error.code == "JobTimedOut"
    assert decision.follow_up.last_state == {"status": "InProgress", "operation": "Backup"}


def test_job_deadline_is_the_job_timeout_not_the_operation_timeout() -> None:
    started = NOW - timedelta(seconds=DEFAULTS.operation_timeout_seconds + 1)

    decision = after_job(polling(Phase.JOB, started=started), job(JobStatus.IN_PROGRESS), None, NOW, DEFAULTS)

    assert isinstance(decision, Continue)


# --- after_transient -----------------------------------------------------------------------


def unavailable(retry_after: float | None = None, code: str = "Http503") -> ArmUnavailable:
    return ArmUnavailable(ErrorInfo(code, "unavailable", http_status=503), retry_after=retry_after)


def throttled(retry_after: float | None = 30.0) -> ArmThrottled:
    return ArmThrottled(ErrorInfo("TooManyRequests", "slow down", http_status=429), retry_after=retry_after)


def unreachable(arrived: bool) -> ArmUnreachable:
    return ArmUnreachable(ErrorInfo("ArmTimeout", "read timed out"), request_may_have_arrived=arrived)


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize(("retry_after", "delay"), [(42.0, 42), (0.0, 5), (1.5, 5), (900.0, 900)])
def test_retry_after_wins(phase: Phase, retry_after: float, delay: int) -> None:
    before = polling(phase, attempt=2)

    decision = continued(after_transient(before, unavailable(retry_after), NOW, DEFAULTS, random.Random(1)))

    assert decision.delay_seconds == delay
    assert decision.follow_up.phase is phase
    assert decision.follow_up.attempt == 3
    assert decision.follow_up.last_error == unavailable().info


@pytest.mark.parametrize("attempt_before", [0, 1, 2, 4, 6])
@pytest.mark.parametrize("seed", [0, 3])
def test_backoff_without_retry_after(attempt_before: int, seed: int) -> None:
    decision = continued(after_transient(polling(attempt=attempt_before), unavailable(), NOW, DEFAULTS,
                                         random.Random(seed)))

    attempt = attempt_before + 1
    expected = backoff_seconds(attempt, base=10, cap=600, rng=random.Random(seed))
    assert decision.delay_seconds == delay_within(expected, floor=5)
    step = min(600, 10 * 2 ** (attempt - 1))
    assert max(5, step // 2) <= decision.delay_seconds <= step


@pytest.mark.parametrize(
    "error",
    [unavailable(), unreachable(True), unreachable(False),
     TokenUnavailable(ErrorInfo("TokenUnavailable", "no identity"))],
)
def test_attempts_are_bounded(error: TransientError) -> None:
    last_allowed = continued(after_transient(polling(attempt=6), error, NOW, DEFAULTS, random.Random(0)))
    assert last_allowed.follow_up.attempt == 7

    decision = finished(after_transient(last_allowed.follow_up, error, NOW, DEFAULTS, random.Random(0)))

    assert decision.status is ResultStatus.FAILED
    assert decision.error == error.info
    assert decision.follow_up.last_error == error.info
    assert decision.follow_up.attempt == 8


def test_retry_max_attempts_setting() -> None:
    settings = make_settings(RETRY_MAX_ATTEMPTS="1")

    assert isinstance(after_transient(polling(), unavailable(5.0), NOW, settings, random.Random(0)), Finish)


def test_throttling_is_paced_with_jitter_past_retry_after() -> None:
    delays = set()
    for seed in range(30):
        decision = continued(after_transient(polling(attempt=2), throttled(30.0), NOW, DEFAULTS, random.Random(seed)))
        assert decision.follow_up.attempt == 2  # a 429 is pacing, not a failed attempt
        delays.add(decision.delay_seconds)

    assert min(delays) >= 30
    assert max(delays) <= 45
    assert len(delays) > 3


def test_throttling_does_not_exhaust_the_attempts() -> None:
    before = polling(attempt=DEFAULTS.retry_max_attempts - 1)

    decision = continued(after_transient(before, throttled(10.0), NOW, DEFAULTS, random.Random(0)))

    assert decision.follow_up.attempt == DEFAULTS.retry_max_attempts - 1


def test_throttling_without_retry_after_backs_off_more_each_time() -> None:
    current, lows = polling(), []
    for expected_throttled in range(1, 6):
        decision = continued(after_transient(current, throttled(None), NOW, DEFAULTS, random.Random(0)))
        current = decision.follow_up
        assert (current.throttled, current.attempt) == (expected_throttled, 0)
        step = min(600, 10 * 2 ** (expected_throttled - 1))
        assert max(5, step // 2) <= decision.delay_seconds <= step
        lows.append(step)

    assert lows == [10, 20, 40, 80, 160]


def test_another_failure_resets_the_throttle_count_but_counts_both_in_the_backoff() -> None:
    before = polling(throttled=4, attempt=1)

    decision = continued(after_transient(before, unavailable(), NOW, DEFAULTS, random.Random(2)))

    assert (decision.follow_up.throttled, decision.follow_up.attempt) == (0, 2)
    expected = backoff_seconds(2, base=10, cap=600, rng=random.Random(2))
    assert decision.delay_seconds == delay_within(expected, floor=5)


@pytest.mark.parametrize("error", [unavailable(30.0), throttled(30.0), unreachable(True)])
def test_transient_past_the_deadline_fails_with_the_error(error: TransientError) -> None:
    started = NOW - timedelta(seconds=DEFAULTS.operation_timeout_seconds)

    decision = finished(after_transient(polling(started=started), error, NOW, DEFAULTS, random.Random(0)))

    assert decision.status is ResultStatus.FAILED
    assert decision.error == error.info


def test_transient_wait_is_clamped_to_the_deadline() -> None:
    started = NOW - timedelta(seconds=DEFAULTS.operation_timeout_seconds - 20)

    decision = continued(after_transient(polling(started=started), unavailable(600.0), NOW, DEFAULTS,
                                         random.Random(0)))

    assert decision.delay_seconds == 20


def status_error(status: int) -> ArmUnavailable:
    return ArmUnavailable(ErrorInfo(f"Http{status}", "x", http_status=status), retry_after=None)


@pytest.mark.parametrize(
    "error",
    [unreachable(True), status_error(500), status_error(502), status_error(503), status_error(504),
     status_error(408)],
)
def test_a_trigger_that_may_have_acted_is_marked_uncertain(error: TransientError) -> None:
    decision = continued(after_transient(follow_up(Phase.TRIGGER), error, NOW, DEFAULTS, random.Random(0)))

    assert decision.follow_up.trigger_uncertain_since == NOW
    assert decision.follow_up.phase is Phase.TRIGGER


def test_an_earlier_uncertainty_is_kept() -> None:
    earlier = NOW - timedelta(minutes=10)

    decision = continued(after_transient(follow_up(Phase.TRIGGER, trigger_uncertain_since=earlier),
                                         unreachable(True), NOW, DEFAULTS, random.Random(0)))

    assert decision.follow_up.trigger_uncertain_since == earlier


@pytest.mark.parametrize(
    ("phase", "error"),
    [(Phase.TRIGGER, unreachable(False)), (Phase.TRIGGER, throttled()), (Phase.TRIGGER, throttled(None)),
     (Phase.TRIGGER, status_error(401)),
     (Phase.TRIGGER, ArmUnavailable(ErrorInfo("NoStatus", "x"))),
     (Phase.TRIGGER, TokenUnavailable(ErrorInfo("TokenUnavailable", "x"))),
     (Phase.OPERATION, unreachable(True)), (Phase.OPERATION, status_error(503)), (Phase.JOB, unreachable(True)),
     (Phase.JOB, status_error(500))],
)
def test_other_failures_do_not_mark_the_trigger_uncertain(phase: Phase, error: TransientError) -> None:
    decision = continued(after_transient(polling(phase) if phase is not Phase.TRIGGER else follow_up(phase), error,
                                         NOW, DEFAULTS, random.Random(0)))

    assert decision.follow_up.trigger_uncertain_since is None


# --- after_permanent -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [ArmRejected(ErrorInfo("UserErrorBackupOperationInProgress", "busy", http_status=409)),
     ArmProtocolError(ErrorInfo("MissingOperationHeaders", "x")),
     UntrustedUrl(ErrorInfo("UntrustedFollowUpUrl", "refused"))],
)
def test_after_permanent_fails_with_the_error(error: ArmRejected | ArmProtocolError | UntrustedUrl) -> None:
    decision = finished(after_permanent(polling(), error, NOW, make_settings()))

    assert decision.status is ResultStatus.FAILED
    assert decision.error == error.info
    assert decision.follow_up.last_error == error.info


# --- after_job_lookup ----------------------------------------------------------------------


def test_a_trigger_with_no_job_found_is_not_decided_here() -> None:
    with pytest.raises(ValueError, match="must be sent"):
        after_job_lookup(follow_up(Phase.TRIGGER), None, NOW, DEFAULTS)


def test_no_job_listed_after_location_is_looked_for_again_then_triggered() -> None:
    lookup = polling(Phase.JOB, job_id=None)
    for attempt in range(1, JOB_LOOKUP_TRIES):
        again = continued(after_job_lookup(lookup, None, NOW, DEFAULTS))
        assert again.delay_seconds == DEFAULTS.poll_interval_seconds
        assert again.follow_up.polls == attempt
        lookup = again.follow_up

    decision = finished(after_job_lookup(lookup, None, NOW, DEFAULTS))

    assert decision.status is ResultStatus.TRIGGERED
    assert decision.follow_up.job_id is None


def test_a_job_found_after_an_unseen_trigger_is_adopted() -> None:
    uncertain: datetime = NOW - timedelta(minutes=4)
    before = follow_up(Phase.TRIGGER, trigger_uncertain_since=uncertain, attempt=2)
    later = NOW + timedelta(seconds=5)

    decision = continued(after_job_lookup(before, "job-7", later, DEFAULTS))

    assert decision.delay_seconds == 60
    after = decision.follow_up
    assert (after.phase, after.job_id, after.phase_started_at) == (Phase.JOB, "job-7", later)
    assert after.triggered_at == uncertain
    assert after.trigger_uncertain_since is None
    assert after.attempt == 0


def test_a_job_found_keeps_a_known_trigger_time() -> None:
    decision = continued(after_job_lookup(polling(Phase.JOB, job_id=None), "job-7", NOW + timedelta(hours=1),
                                          DEFAULTS))

    assert decision.follow_up.triggered_at == NOW


def test_a_job_found_without_any_trigger_time_uses_now() -> None:
    decision = continued(after_job_lookup(follow_up(Phase.JOB), "job-7", NOW + timedelta(hours=1), DEFAULTS))

    assert decision.follow_up.triggered_at == NOW + timedelta(hours=1)


def test_a_job_found_with_tracking_off_is_triggered() -> None:
    decision = finished(after_job_lookup(follow_up(Phase.TRIGGER, trigger_uncertain_since=NOW), "job-7", NOW,
                                         make_settings(TRACK_BACKUP_JOBS="false")))

    assert decision.status is ResultStatus.TRIGGERED
    assert decision.follow_up.job_id == "job-7"


def test_a_stamped_deadline_outlives_a_change_of_settings() -> None:
    stamped = stamp_deadline(follow_up(Phase.OPERATION), make_settings(OPERATION_TIMEOUT_SECONDS="600"))

    assert stamped.deadline == NOW + timedelta(seconds=600)
    # a redeployment with a longer timeout does not move the deadline of work in flight
    assert phase_deadline(stamped, make_settings(OPERATION_TIMEOUT_SECONDS="7200")) == NOW + timedelta(seconds=600)
    assert stamp_deadline(stamped, DEFAULTS) is stamped


def test_a_new_phase_gets_a_deadline_of_its_own() -> None:
    stamped = stamp_deadline(follow_up(Phase.OPERATION), make_settings(OPERATION_TIMEOUT_SECONDS="600"))
    later = NOW + timedelta(minutes=3)

    job_phase = stamp_deadline(stamped.enter(Phase.JOB, later, job_id="j"), make_settings(JOB_TIMEOUT_SECONDS="3600"))

    assert job_phase.deadline == later + timedelta(seconds=3600)


def test_the_deadline_travels_in_the_follow_up_message() -> None:
    stamped = stamp_deadline(follow_up(Phase.OPERATION), make_settings(OPERATION_TIMEOUT_SECONDS="600"))

    assert FollowUp.from_document(json.loads(stamped.to_text())).deadline == stamped.deadline
