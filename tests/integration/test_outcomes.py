"""The ways a backup request ends other than Succeeded: refused by ARM, failed job, timed out, already running."""

from __future__ import annotations

import pytest
import requests

from devtools.funchost.processes import wait_until
from tests.integration.conftest import (
    APP_TIMING,
    FAST_POLLING,
    AppQueues,
    Suite,
    item_id,
    request_text,
    unique,
    vm_names,
)

pytestmark = pytest.mark.integration

# The bundled inventory's VM whose backup job fails (UserErrorVmNotInDesirableState).
BROKEN = {
    **vm_names("vault1", "unused"),
    "containerName": "IaasVMContainer;iaasvmcontainerv2;rg-app;vm-broken",
    "protectedItemName": "VM;iaasvmcontainerv2;rg-app;vm-broken",
}


def test_arm_refusals_end_failed_with_arms_code_and_request_ids(suite: Suite) -> None:
    ghost_item = vm_names("vault1", "ghost")  # vault1 holds no such item
    no_group = {**vm_names("vault1", "vm1"), "resourceGroupName": "rg-missing"}
    cases = {unique("unknown-item"): (ghost_item, "ResourceNotFound"),
             unique("unknown-group"): (no_group, "ResourceGroupNotFound")}
    for correlation_id, (names, _) in cases.items():
        suite.send(request_text(names, correlation_id))

    results = suite.results().wait_for(cases, timeout=20)

    for correlation_id, (names, code) in cases.items():
        result = results[correlation_id]
        suite.check_schema(result)
        assert result["status"] == "Failed", result
        assert result["protectedItemId"] == item_id(names)
        error = result["error"]
        assert error["code"] == code
        assert error["httpStatus"] == 404
        assert error["requestId"] and error["correlationRequestId"]
        assert "jobId" not in result
    # Permanent: one POST each, never repeated.
    posts = [entry for entry in suite.admin.requests() if entry["kind"] == "trigger"]
    assert len(posts) == 2 and all(entry["status"] == 404 for entry in posts)


def test_a_failed_job_ends_failed_with_the_jobs_error_details(suite: Suite) -> None:
    correlation_id = unique("broken")
    suite.admin.configure({"items": {BROKEN["protectedItemName"]: {"job_seconds": 120}}})
    suite.send(request_text(BROKEN, correlation_id))

    result = suite.results().one(correlation_id, timeout=30)

    suite.check_schema(result)
    assert result["status"] == "Failed", result
    assert result["jobId"]
    job = result["job"]
    assert job["status"] == "Failed"
    assert job["errorDetails"][0]["errorTitle"] == "UserErrorVmNotInDesirableState"
    assert job["errorDetails"][0]["errorString"]
    assert result["error"]["message"] == job["errorDetails"][0]["errorString"]


def test_a_failed_jobs_result_carries_the_symbolic_error_code(suite: Suite) -> None:
    correlation_id = unique("broken-code")
    suite.admin.configure({"items": {BROKEN["protectedItemName"]: {"job_seconds": 120}}})
    suite.send(request_text(BROKEN, correlation_id))

    result = suite.results().one(correlation_id, timeout=30)

    assert result["status"] == "Failed"
    assert result["error"]["code"] == "UserErrorVmNotInDesirableState", result["error"]


def test_operations_and_jobs_running_past_their_deadlines_end_timed_out(suite: Suite) -> None:
    queues = AppQueues.with_prefix(unique("it-timeout"))
    operation_id, job_id = unique("op-timeout"), unique("job-timeout")
    settings = {**APP_TIMING, **FAST_POLLING, "OPERATION_TIMEOUT_SECONDS": "2", "JOB_TIMEOUT_SECONDS": "3"}
    with suite.extra_host("timeout", queues, env=settings):
        suite.send(request_text(vm_names("vault-it", "op-timeout"), operation_id), queues)
        suite.send(request_text(vm_names("vault-it", "job-timeout"), job_id), queues)
        results = suite.results(queues).wait_for([operation_id, job_id], timeout=30)

    operation, job = results[operation_id], results[job_id]
    for result in (operation, job):
        suite.check_schema(result)
        assert result["status"] == "TimedOut", result
    # The operation (an hour, emulated) never finished: no job, and the operation as last seen.
    assert operation["error"]["code"] == "OperationTimedOut"
    assert operation["lastState"]["status"] == "InProgress"
    assert "jobId" not in operation
    # The job (ten hours, emulated) exists and was still running.
    assert job["error"]["code"] == "JobTimedOut"
    assert job["jobId"]
    assert job["lastState"]["status"] == "InProgress"
    assert job["lastState"]["operation"] == "Backup"
    elapsed = job["timings"]["elapsedSeconds"]
    assert 3 <= elapsed < 15, elapsed


def test_a_second_request_for_a_running_backup_with_the_same_properties_joins_it(suite: Suite) -> None:
    names = vm_names("vault-it", "conflict")
    first, second = unique("first"), unique("second")
    suite.send(request_text(names, first))
    wait_for_accepted_trigger(suite, item_id(names))
    suite.send(request_text(names, second))

    results = suite.results().wait_for([first, second], timeout=60)

    assert results[first]["status"] == results[second]["status"] == "Succeeded"
    assert results[second]["joined"] == first
    assert results[second]["jobId"] == results[first]["jobId"]
    suite.check_schema(results[second])
    assert suite.admin.stats()["triggers_by_item"][item_id(names)] == 1


def test_a_second_request_with_other_properties_waits_then_triggers_its_own(suite: Suite) -> None:
    names = vm_names("vault-it", "conflict")
    first, second = unique("first"), unique("second")
    suite.send(request_text(names, first))
    wait_for_accepted_trigger(suite, item_id(names))
    suite.send(request_text(names, second, retentionDays=90))

    results = suite.results().wait_for([first, second], timeout=90)

    assert results[first]["status"] == results[second]["status"] == "Succeeded"
    assert "joined" not in results[second]
    assert results[second]["jobId"] != results[first]["jobId"]
    posts = [entry for entry in suite.admin.requests() if entry["kind"] == "trigger"]
    assert [entry["status"] for entry in posts] == [202, 202], posts  # none refused: the second waited
    assert results[second]["timings"]["triggeredAt"] >= results[first]["timings"]["completedAt"]


@pytest.mark.parametrize("where", ["post", "operation", "job"])
def test_a_backup_started_outside_the_app_is_waited_out_not_failed(suite: Suite, where: str) -> None:
    suite.admin.configure({"in_progress": where})
    names = vm_names("vault-it", "conflict")
    start_backup_outside_the_app(suite, names)
    request = unique("after-outside")
    suite.send(request_text(names, request))

    result = suite.results().one(request, timeout=90)

    assert result["status"] == "Succeeded", result
    suite.check_schema(result)
    # The outside backup, the app's first POST (refused at once with "post"; accepted and then
    # failed by its operation or job otherwise), and the app's POST after the outside one ended.
    assert suite.admin.stats()["triggers_by_item"][item_id(names)] == (2 if where == "post" else 3)


def start_backup_outside_the_app(suite: Suite, names: dict[str, str]) -> None:
    """What an operator's portal click does: a trigger POST with a token of its own."""
    endpoints = suite.stack.endpoints
    token = requests.get(
        endpoints.identity_endpoint, params={"api-version": "2019-08-01", "resource": "https://management.azure.com"},
        headers={"X-IDENTITY-HEADER": endpoints.identity_header}, timeout=10,
    ).json()["access_token"]
    path = item_id(names) + "/backup"
    answer = requests.post(
        f"{endpoints.arm_endpoint}{path}", params={"api-version": "2024-04-01"},
        json={"properties": {"objectType": "IaasVMBackupRequest"}}, headers={"Authorization": f"Bearer {token}"},
        timeout=10, verify=endpoints.ca_bundle,
    )
    assert answer.status_code == 202, answer.text
    wait_for_accepted_trigger(suite, item_id(names))


def wait_for_accepted_trigger(suite: Suite, item: str, timeout: float = 10) -> None:
    wait_until(
        lambda: True if suite.admin.stats()["triggers_by_item"].get(item, 0) >= 1 else None,
        timeout=timeout,
        what=f"the emulator accepting a trigger of {item}",
    )
