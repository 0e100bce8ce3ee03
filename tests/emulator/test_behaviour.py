"""Backups over emulated time: outcomes, Retry-After scaling, the in-progress conflict and the daily limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import SHARE, SHARE_BODY, SQL, SQL_BODY, VAULT, VM1, VM2, VM_BODY, Client, wait_for


def _status(arm: Client, url: str) -> dict[str, Any]:
    response = arm.get(url)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _job(arm: Client, job_id: str) -> dict[str, Any]:
    return _status(arm, f"{VAULT}/backupJobs/{job_id}")["properties"]  # type: ignore[no-any-return]


def test_a_backup_runs_to_completion_in_real_time_at_a_high_time_scale(make_arm: Callable[..., Client]) -> None:
    arm = make_arm(time_scale=6000)
    status_url = arm.trigger(VM1).headers["Azure-AsyncOperation"]

    operation = wait_for(lambda: (body := _status(arm, status_url))["status"] != "InProgress" and body)
    job_id = operation["properties"]["jobId"]
    job = wait_for(lambda: (props := _job(arm, job_id))["status"] != "InProgress" and props)

    assert operation["status"] == "Succeeded"
    assert job["status"] == "Completed"
    assert [t["status"] for t in job["extendedInfo"]["tasksList"]] == ["Completed", "Completed"]
    assert job["duration"] == "PT10M"


def test_retry_after_is_the_emulated_interval_in_real_seconds(make_arm: Callable[..., Client]) -> None:
    slow = make_arm(time_scale=1)
    fast = make_arm(time_scale=10, defaults={"operation_retry_after": 45})

    assert slow.trigger(VM1).headers["Retry-After"] == "60"
    assert fast.trigger(VM1).headers["Retry-After"] == "5"


@pytest.mark.parametrize("outcome", ["Completed", "CompletedWithWarnings", "Failed"])
def test_job_outcomes(arm: Client, outcome: str) -> None:
    arm.configure({"items": {VM1[1]: {"job_outcome": outcome, "error_code": "UserErrorGuestAgentStatusUnavailable",
                                       "error_number": 400123}}})
    status_url = arm.trigger(VM1).headers["Azure-AsyncOperation"]
    arm.advance(120)
    job_id = _status(arm, status_url)["properties"]["jobId"]

    running = _job(arm, job_id)
    arm.advance(480)
    done = _job(arm, job_id)

    assert running["status"] == "InProgress" and "endTime" not in running and "errorDetails" not in running
    assert done["status"] == outcome
    assert done["endTime"]
    if outcome == "Failed":
        assert done["errorDetails"] == [{
            "errorCode": 400123,
            "errorTitle": "UserErrorGuestAgentStatusUnavailable",
            "errorString": "VM is not in a state that allows backups.",
            "recommendations": done["errorDetails"][0]["recommendations"],
        }]
        assert done["extendedInfo"]["tasksList"][-1]["status"] == "Failed"
    else:
        assert "errorDetails" not in done


def test_a_cancelled_job_passes_through_cancelling(arm: Client) -> None:
    arm.configure({"defaults": {"job_outcome": "Cancelled"}})
    status_url = arm.trigger(VM1).headers["Azure-AsyncOperation"]
    arm.advance(120)
    job_id = _status(arm, status_url)["properties"]["jobId"]

    seen = [_job(arm, job_id)["status"]]
    arm.advance(360)
    seen.append(_job(arm, job_id)["status"])
    arm.advance(120)
    seen.append(_job(arm, job_id)["status"])

    assert seen == ["InProgress", "Cancelling", "Cancelled"]


@pytest.mark.parametrize(("outcome", "code"), [("Failed", "UserErrorVmNotInDesirableState"),
                                               ("Canceled", "OperationCanceled")])
def test_operation_outcomes_without_a_job(arm: Client, outcome: str, code: str) -> None:
    arm.configure({"defaults": {"operation_outcome": outcome}})
    accepted = arm.trigger(VM1)
    arm.advance(120)

    status = _status(arm, accepted.headers["Azure-AsyncOperation"])
    result = arm.get(accepted.headers["Location"])

    assert status["status"] == outcome
    assert "properties" not in status
    assert (status.get("error") or {}).get("code") == (code if outcome == "Failed" else None)
    assert result.status_code == 400
    assert result.json()["error"]["code"] == code
    assert arm.get(f"{VAULT}/backupJobs").json()["value"] == []


def test_operation_durations_come_from_the_inventory(arm: Client) -> None:
    slow_vm = ("IaasVMContainer;iaasvmcontainerv2;rg-app;vm-slow", "VM;iaasvmcontainerv2;rg-app;vm-slow")
    status_url = arm.trigger(slow_vm).headers["Azure-AsyncOperation"]

    arm.advance(200)
    assert _status(arm, status_url)["status"] == "InProgress"
    arm.advance(100)
    assert _status(arm, status_url)["status"] == "Succeeded"


def test_workload_jobs_carry_their_type(arm: Client) -> None:
    share_url = arm.trigger(SHARE, SHARE_BODY).headers["Azure-AsyncOperation"]
    sql_url = arm.trigger(SQL, SQL_BODY).headers["Azure-AsyncOperation"]
    arm.advance(120)

    share = _job(arm, _status(arm, share_url)["properties"]["jobId"])
    sql = _job(arm, _status(arm, sql_url)["properties"]["jobId"])

    assert (share["jobType"], share["backupManagementType"]) == ("AzureStorageJob", "AzureStorage")
    assert (sql["jobType"], sql["backupManagementType"]) == ("AzureWorkloadJob", "AzureWorkload")
    assert sql["extendedInfo"]["propertyBag"] == {"Backup Type": "Full"}


def test_activity_id_falls_back_to_the_correlation_id(arm: Client) -> None:
    status_url = arm.trigger(VM1, headers={"x-ms-correlation-request-id": "corr-1"}).headers["Azure-AsyncOperation"]
    arm.advance(120)

    assert _job(arm, _status(arm, status_url)["properties"]["jobId"])["activityId"] == "corr-1"


def test_a_second_trigger_while_running_is_refused_on_the_post(arm: Client) -> None:
    assert arm.trigger(VM1).status_code == 202

    conflict = arm.trigger(VM1)
    arm.advance(600)
    later = arm.trigger(VM1)

    assert conflict.status_code == 400
    assert conflict.json()["error"]["code"] == "UserErrorBackupOperationInProgress"
    assert later.status_code == 202
    assert list(arm.stats()["triggers_by_item"].values()) == [2]


def test_the_conflict_may_surface_as_a_failed_operation(arm: Client) -> None:
    arm.configure({"in_progress": "operation"})
    arm.trigger(VM1)

    conflict = arm.trigger(VM1)
    arm.advance(120)

    assert conflict.status_code == 202
    status = _status(arm, conflict.headers["Azure-AsyncOperation"])
    assert status["status"] == "Failed"
    assert status["error"]["code"] == "UserErrorBackupOperationInProgress"


def test_the_conflict_may_surface_as_a_failed_job(arm: Client) -> None:
    arm.configure({"in_progress": "job"})
    first = arm.trigger(VM1).headers["Azure-AsyncOperation"]

    conflict = arm.trigger(VM1).headers["Azure-AsyncOperation"]
    arm.advance(120)

    assert _job(arm, _status(arm, first)["properties"]["jobId"])["status"] == "InProgress"
    job = _job(arm, _status(arm, conflict)["properties"]["jobId"])
    assert job["status"] == "Failed"
    assert job["errorDetails"][0]["errorTitle"] == "UserErrorBackupOperationInProgress"


LIMIT_MESSAGE = "Operation is blocked as you have reached the limit on number of operations permitted in 24 hours."


@pytest.mark.parametrize(("target", "body", "limit"), [(VM1, VM_BODY, 9), (SHARE, SHARE_BODY, 10), (SQL, SQL_BODY, 3)])
def test_daily_on_demand_limit_per_item_and_utc_day(
    arm: Client, target: tuple[str, str], body: dict[str, Any], limit: int
) -> None:
    arm.configure({"attempt_limits": {"AzureIaasVM": None, "AzureWorkload": None}})  # this test counts backups
    for _ in range(limit):
        assert arm.trigger(target, body).status_code == 202
        arm.advance(700)  # past the operation and the job: the next trigger is not refused as busy

    refused = arm.trigger(target, body)
    other = arm.trigger(VM2)
    arm.advance(24 * 3600)
    next_day = arm.trigger(target, body)

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "CloudDosAbsoluteLimitReached"
    assert refused.json()["error"]["message"].startswith(LIMIT_MESSAGE)
    assert other.status_code == 202
    assert next_day.status_code == 202
    assert sorted(arm.stats()["triggers_by_item"].values()) == [1, limit + 1]  # the refused one is not counted


@pytest.mark.parametrize(("target", "body"), [(VM1, VM_BODY), (SQL, SQL_BODY)])
def test_nine_attempts_in_24_hours_then_the_retryable_limit(
    arm: Client, target: tuple[str, str], body: dict[str, Any]
) -> None:
    first = arm.trigger(target, body)
    busy = [arm.trigger(target, body) for _ in range(8)]  # attempts too, though refused as in progress
    limited = arm.trigger(target, body)
    arm.advance(23 * 3600)
    still_limited = arm.trigger(target, body)
    arm.advance(3600)  # the first attempts are now 24 hours old
    again = arm.trigger(target, body)

    assert first.status_code == 202
    assert {(r.status_code, r.json()["error"]["code"]) for r in busy} == {(400, "UserErrorBackupOperationInProgress")}
    for refused in (limited, still_limited):
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "CloudDosAbsoluteLimitReachedWithRetry"
        assert refused.json()["error"]["message"].startswith(LIMIT_MESSAGE)
    assert again.status_code == 202


def test_file_shares_have_no_attempt_limit(arm: Client) -> None:
    answers = [arm.trigger(SHARE, SHARE_BODY) for _ in range(12)]

    assert answers[0].status_code == 202
    assert {answer.json()["error"]["code"] for answer in answers[1:]} == {"UserErrorBackupOperationInProgress"}
