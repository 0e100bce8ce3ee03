"""shared.results and shared.timing, ledger changes: ``joined``, and ``retryAt`` on a daily limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.errors import DAILY_LIMIT_CODES, ErrorInfo
from shared.followup import Phase
from shared.results import ResultStatus, finished
from shared.timing import next_utc_midnight
from tests.unit.builders import NOW, follow_up, result_of

LIMIT_CODES = ["CloudDosAbsoluteLimitReached", "CloudDosAbsoluteLimitReachedWithRetry"]
JOB = {"status": "Completed", "operation": "Backup"}


# --- next_utc_midnight ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "midnight"),
    [
        (datetime(2026, 11, 26, 12, 0, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)),
        (datetime(2026, 11, 26, 0, 0, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)),
        (datetime(2026, 11, 26, 23, 59, 59, 999999, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)),
        (datetime(2026, 12, 31, 18, 0, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2028, 2, 28, 9, 0, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
        # 20:00 in New York on the 26th is 01:00 UTC on the 27th; 06:00 in Tokyo on the 27th is 21:00 UTC on the 26th.
        (datetime(2026, 11, 26, 20, 0, tzinfo=timezone(timedelta(hours=-5))), datetime(2026, 11, 28, tzinfo=UTC)),
        (datetime(2026, 11, 27, 6, 0, tzinfo=timezone(timedelta(hours=9))), datetime(2026, 11, 27, tzinfo=UTC)),
    ],
)
def test_next_utc_midnight(now: datetime, midnight: datetime) -> None:
    found = next_utc_midnight(now)

    assert found == midnight
    assert found.utcoffset() == timedelta(0)
    assert timedelta(0) < found - now <= timedelta(days=1)


# --- retryAt ---------------------------------------------------------------------------------


def limit_error(code: str) -> ErrorInfo:
    return ErrorInfo(code, "The on-demand backups of this item for today are used up.", http_status=400)


@pytest.mark.parametrize("code", LIMIT_CODES)
@pytest.mark.parametrize(
    ("completed", "retry_at"),
    [(NOW, "2026-11-27T00:00:00Z"), (datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC), "2026-11-27T00:00:00Z"),
     (datetime(2026, 11, 27, 0, 0, tzinfo=UTC), "2026-11-28T00:00:00Z")],
)
def test_a_daily_limit_says_when_to_try_again(code: str, completed: datetime, retry_at: str) -> None:
    document = result_of(finished(follow_up(), ResultStatus.FAILED, completed, error=limit_error(code)))

    assert document["error"]["code"] == code
    assert document["retryAt"] == retry_at


@pytest.mark.parametrize(
    "error",
    [None, ErrorInfo("UserErrorBackupOperationInProgress", "busy"), ErrorInfo("Http429", "throttled"),
     ErrorInfo("cloudDosAbsoluteLimitReached", "another spelling is another code")],
)
def test_other_results_have_no_retry_at(error: ErrorInfo | None) -> None:
    if error is None:
        text = finished(follow_up(Phase.JOB, job_id="j"), ResultStatus.SUCCEEDED, NOW, job=JOB)
    else:
        text = finished(follow_up(), ResultStatus.FAILED, NOW, error=error)

    assert "retryAt" not in result_of(text)


def test_the_daily_limit_codes_are_the_two_azure_sends() -> None:
    assert set(LIMIT_CODES) == DAILY_LIMIT_CODES


# --- joined ----------------------------------------------------------------------------------


def test_a_joined_result_names_the_key_it_joined() -> None:
    value = follow_up(Phase.WAIT, job_id="owner-job", triggered_at=NOW - timedelta(minutes=5))

    document = result_of(finished(value, ResultStatus.SUCCEEDED, NOW, job=JOB, joined="owner"))

    assert (document["joined"], document["jobId"], document["status"]) == ("owner", "owner-job", "Succeeded")
    assert document["correlationId"] == value.correlation_id


def test_a_result_of_its_own_backup_has_no_joined() -> None:
    document = result_of(finished(follow_up(Phase.JOB, job_id="j"), ResultStatus.SUCCEEDED, NOW, job=JOB))

    assert "joined" not in document
    assert document["jobId"] == "j"


@pytest.mark.parametrize("code", LIMIT_CODES)
def test_a_joined_failure_for_a_daily_limit_carries_both(code: str) -> None:
    document = result_of(finished(follow_up(), ResultStatus.FAILED, NOW, error=limit_error(code), joined="owner"))

    assert (document["joined"], document["retryAt"]) == ("owner", "2026-11-27T00:00:00Z")
