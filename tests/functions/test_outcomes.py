"""Every way a request can end other than Succeeded, driven message by message through both functions.

Throttling, failed operations and jobs, cancellation, warnings, timeouts, ARM's permanent and
transient errors, untrusted follow-up URLs, and requests that are rejected before any HTTP call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import poll_status
import trigger_backup
from tests.fakes import ARM, FAKE_TOKEN, FakeCredential, Reply
from tests.functions.harness import (
    EXAMPLE_JOB_ID,
    JOB_GET,
    JOB_LIST,
    OPERATION_STATUS,
    POST_BACKUP,
    SUBSCRIPTION,
    VAULT_PATH,
    VM_NAMES,
    App,
    accepted,
    check_result_schema,
    cloud_error,
    job,
    job_list,
    listed_job,
    operation,
    script_success,
)

VM_REQUEST = json.dumps({**VM_NAMES, "correlationId": "outcome-1"})
ITEM_PATH = (
    f"{VAULT_PATH}/backupFabrics/Azure/protectionContainers/{VM_NAMES['containerName']}"
    f"/protectedItems/{VM_NAMES['protectedItemName']}"
)


def completed_after_operation(app: App, *job_replies: Reply) -> None:
    app.transport.on("POST", POST_BACKUP, accepted())
    app.transport.on("GET", OPERATION_STATUS, operation("Succeeded"))
    app.transport.on("GET", JOB_GET, *job_replies)


# --- throttling -------------------------------------------------------------------------------------


def test_throttled_post_waits_at_least_retry_after_then_posts_again() -> None:
    app = App(RETRY_MAX_ATTEMPTS="2")
    throttled = cloud_error(429, "TooManyRequests", "throttled", retry_after="17")
    app.transport.on("POST", POST_BACKUP, throttled, throttled, throttled, accepted())
    app.transport.on("GET", JOB_LIST, Reply(200, {"value": []}))  # retried POSTs look for a job first
    app.transport.on("GET", OPERATION_STATUS, operation("Succeeded"))
    app.transport.on("GET", JOB_GET, job("Completed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Succeeded"
    assert result["jobId"] == EXAMPLE_JOB_ID
    assert len(app.posts) == 4, "a 429 means ARM did not take the POST, so it is sent again"
    # A 429 is paced, not counted: three of them do not exhaust RETRY_MAX_ATTEMPTS=2. Each waits
    # Retry-After plus up to half of it again (spreading everyone throttled together).
    assert all(17 <= delay <= 26 for delay in app.delays[:3]), app.delays
    assert app.delays[3:] == [60, 60]
    assert app.follow_ups[0]["lastError"]["code"] == "TooManyRequests"
    assert app.follow_ups[0]["phase"] == "trigger"


def test_throttling_that_never_stops_fails_at_the_deadline_with_the_429() -> None:
    app = App(OPERATION_TIMEOUT_SECONDS="300", RETRY_MAX_ATTEMPTS="2")
    app.transport.on("POST", POST_BACKUP, cloud_error(429, "TooManyRequests", "throttled", retry_after="60",
                                                      request_id="throttled-post"))
    app.transport.on("GET", JOB_LIST, Reply(200, {"value": []}))  # retried POSTs look for a job first

    result = app.run(VM_REQUEST)

    assert result["status"] == "Failed"
    assert result["error"]["code"] == "TooManyRequests"
    assert result["error"]["httpStatus"] == 429
    assert result["error"]["requestId"] == "throttled-post"
    assert sum(app.delays) == 300, "the last wait is cut to land on the deadline"
    assert len(app.posts) == len(app.delays) + 1


def _retry_after_in(seconds: int, form: str) -> Callable[[App], dict[str, str]]:
    def headers(app: App) -> dict[str, str]:
        if form == "seconds":
            return {"Retry-After": str(seconds)}
        if form == "http-date":
            return {"Retry-After": format_datetime(app.clock() + timedelta(seconds=seconds), usegmt=True)}
        # the millisecond headers are more precise and win over Retry-After
        return {form: str(seconds * 1000 - 500), "Retry-After": "300"}

    return headers


@pytest.mark.parametrize("form", ["seconds", "http-date", "retry-after-ms", "x-ms-retry-after-ms"])
@pytest.mark.parametrize("status", [429, 503])
def test_throttled_status_get_waits_as_long_as_arm_asks_and_continues(status: int, form: str) -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, accepted())
    throttle_headers = _retry_after_in(23, form)
    app.transport.on(
        "GET", OPERATION_STATUS,
        lambda sent: Reply(status, {"error": {"code": "Busy", "message": "slow down"}}, throttle_headers(app)),
        operation("Succeeded"),
    )
    app.transport.on("GET", JOB_GET, job("Completed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Succeeded"
    assert app.delays[0] == 60, "the 202's Retry-After"
    if status == 503:
        assert app.delays[1] == 23
    else:
        assert 23 <= app.delays[1] <= 35, "Retry-After, plus up to half of it again"
    assert app.delays[2:] == [60]
    assert len(app.transport.calls("GET", OPERATION_STATUS)) == 2
    assert app.follow_ups[1]["lastError"]["code"] == "Busy"


def test_throttling_without_retry_after_backs_off_exponentially() -> None:
    app = App()
    throttled = cloud_error(429, "TooManyRequests", "throttled")  # no Retry-After
    app.transport.on("POST", POST_BACKUP, *[throttled] * 5, accepted())
    app.transport.on("GET", JOB_LIST, Reply(200, {"value": []}))  # retried POSTs look for a job first
    app.transport.on("GET", OPERATION_STATUS, operation("Succeeded"))
    app.transport.on("GET", JOB_GET, job("Completed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Succeeded"
    # RETRY_BASE_SECONDS=10 with equal jitter: 5-10, 10-20, 20-40, 40-80, 80-160
    waits = app.delays[:5]
    assert all(low <= wait <= 2 * low for wait, low in zip(waits, [5, 10, 20, 40, 80], strict=True)), waits


def test_retry_after_on_running_operation_and_job_is_honoured() -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, accepted(retry_after=None))
    app.transport.on("GET", OPERATION_STATUS, operation("InProgress", headers={"Retry-After": "45"}),
                     operation("Succeeded"))
    app.transport.on("GET", JOB_GET, job("InProgress", headers={"Retry-After": "300"}), job("Completed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Succeeded"
    # no Retry-After on the 202 -> poll interval 30; then 45 as asked; job: max(60, 300).
    assert app.delays == [30, 45, 60, 300]


def test_long_jobs_are_polled_less_and_less_often_up_to_the_cap() -> None:
    app = App(JOB_POLL_MAX_SECONDS="400")
    completed_after_operation(app, *[job("InProgress")] * 5, job("Completed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Succeeded"
    assert app.delays == [60, 60, 60, 120, 240, 400, 400]


# --- how a backup can end ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["UserErrorBackupOperationInProgress", "SystemBackupOperationInProgress"])
def test_an_operation_failed_for_a_running_backup_waits_for_it_then_triggers_again(code: str) -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, accepted(), accepted())
    error = {"code": code, "message": "Taking backup is not possible as a backup is already in progress."}
    app.transport.on("GET", OPERATION_STATUS, operation("InProgress"), operation("Failed", error=error),
                     operation("Succeeded"))
    app.transport.on("GET", JOB_LIST, Reply(200, {"value": []}))  # the running backup ended meanwhile
    app.transport.on("GET", JOB_GET, job("Completed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Succeeded"
    assert len(app.posts) == 2
    [listing] = app.transport.calls("GET", JOB_LIST)
    assert "status eq 'InProgress'" in parse_qs(urlsplit(listing.url).query)["$filter"][0]
    assert [f["phase"] for f in app.follow_ups].count("wait") == 1


def test_a_post_refused_for_a_running_backup_watches_that_job_and_triggers_after_it() -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, cloud_error(400, "UserErrorBackupOperationInProgress", "busy"), accepted())
    started = (app.clock() - timedelta(minutes=10)).isoformat()
    running = listed_job("running-job", friendly_name="v1win2012r", start_time=started)
    app.transport.on("GET", JOB_LIST, job_list(running))
    app.transport.on("GET", r"/backupJobs/running-job\?", job("InProgress"), job("InProgress"), job("Completed"))
    app.transport.on("GET", OPERATION_STATUS, operation("Succeeded"))
    app.transport.on("GET", JOB_GET, job("Completed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Succeeded"
    assert len(app.posts) == 2
    assert len(app.transport.calls("GET", r"/backupJobs/running-job\?")) == 3
    waits = [f for f in app.follow_ups if f["phase"] == "wait"]
    assert waits[0].get("waitingForJob") is None
    assert {f.get("waitingForJob") for f in waits[1:]} == {"running-job"}
    # The job poll schedule: each look at the running job waits at least as long as the one before.
    wait_delays = [delay for delay, f in zip(app.delays, app.follow_ups, strict=True) if f["phase"] == "wait"]
    assert wait_delays[1:] == sorted(wait_delays[1:])


def test_failed_operation_without_error_body_still_says_why() -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, accepted())
    app.transport.on("GET", OPERATION_STATUS, operation("Failed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Failed"
    assert result["error"]["code"] == "OperationFailed"


def test_cancelled_operation_ends_cancelled() -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, accepted())
    app.transport.on("GET", OPERATION_STATUS, operation("Canceled"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Cancelled"


def test_failed_job_carries_its_error_details() -> None:
    details = [
        {"errorCode": "UserErrorGuestAgentStatusUnavailable", "errorString": "VM Agent unable to communicate",
         "recommendations": ["Ensure the VM agent is running"]},
        {"errorCode": "ExtensionSnapshotFailedNoNetwork", "errorString": "Snapshot failed: no network"},
    ]
    app = App()
    completed_after_operation(app, job("InProgress"), job("Failed", errorDetails=details))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Failed"
    assert result["jobId"] == EXAMPLE_JOB_ID
    assert result["job"]["status"] == "Failed"
    assert result["job"]["errorDetails"] == details
    assert result["error"]["code"] == "UserErrorGuestAgentStatusUnavailable"
    assert result["error"]["message"] == "VM Agent unable to communicate"
    assert result["error"]["details"] == details[1:]


def test_failed_job_without_details_says_job_failed() -> None:
    app = App()
    completed_after_operation(app, job("Failed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Failed"
    assert result["error"]["code"] == "JobFailed"


@pytest.mark.parametrize(
    ("job_statuses", "expected"),
    [
        pytest.param(["Cancelling", "Cancelled"], "Cancelled", id="cancelled"),
        pytest.param(["InProgress", "Canceled"], "Cancelled", id="canceled-spelling"),
        pytest.param(["InProgress", "CompletedWithWarnings"], "CompletedWithWarnings", id="warnings"),
        pytest.param(["inprogress", "COMPLETED"], "Succeeded", id="case-insensitive"),
        pytest.param(["SomethingNew", "Completed"], "Succeeded", id="unknown-status-keeps-polling"),
    ],
)
def test_job_end_states(job_statuses: list[str], expected: str) -> None:
    app = App()
    completed_after_operation(app, *(job(status) for status in job_statuses))

    result = app.run(VM_REQUEST)

    assert result["status"] == expected
    assert result["job"]["status"] == job_statuses[-1]
    assert len(app.transport.calls("GET", JOB_GET)) == 2


def test_completed_with_warnings_keeps_the_warnings() -> None:
    warning = {"errorCode": "UserErrorSomeFilesSkipped", "errorString": "Some files were not backed up"}
    app = App()
    completed_after_operation(app, job("CompletedWithWarnings", errorDetails=[warning]))

    result = app.run(VM_REQUEST)

    assert result["status"] == "CompletedWithWarnings"
    assert result["job"]["errorDetails"] == [warning]


# --- timeouts -----------------------------------------------------------------------------------------


def test_operation_that_never_ends_times_out_with_its_last_state() -> None:
    app = App(OPERATION_TIMEOUT_SECONDS="120")
    app.transport.on("POST", POST_BACKUP, accepted())
    app.transport.on("GET", OPERATION_STATUS, operation("InProgress"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "TimedOut"
    assert result["error"]["code"] == "OperationTimedOut"
    assert result["lastState"]["status"] == "InProgress"
    assert result["lastState"]["startTime"] == "2017-10-29T06:04:18.207325Z"
    # 60 (Retry-After), then 30-second polls, the last one cut to land on the deadline.
    assert app.delays == [60, 30, 30]
    assert result["timings"]["elapsedSeconds"] == 120
    assert app.transport.calls("GET", JOB_GET) == []


def test_job_that_never_ends_times_out_with_its_last_state() -> None:
    app = App(JOB_TIMEOUT_SECONDS="600")
    app.transport.on("POST", POST_BACKUP, accepted())
    app.transport.on("GET", OPERATION_STATUS, operation("InProgress"), operation("Succeeded"))
    app.transport.on("GET", JOB_GET, job("InProgress"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "TimedOut"
    assert result["error"]["code"] == "JobTimedOut"
    assert result["jobId"] == EXAMPLE_JOB_ID
    assert result["lastState"]["status"] == "InProgress"
    assert result["lastState"]["tasks"][0]["taskId"] == "Take Snapshot"
    # the job phase starts at 90 s; growing polls, the last cut to the 600 s deadline
    assert app.delays == [60, 30, 60, 60, 120, 240, 120]


# --- ARM errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "BMSUserErrorInvalidInput"),
        (403, "AuthorizationFailed"),
        (404, "ResourceNotFound"),
        (409, "UserErrorRequestDisallowedByPolicy"),
    ],
)
def test_permanent_error_on_post_fails_at_once_with_arms_cloud_error(status: int, code: str) -> None:
    app = App()
    details = [{"code": "InnerError", "message": "the inner story"}]
    app.transport.on("POST", POST_BACKUP, cloud_error(
        status, code, "ARM says no", request_id="arm-post-1", target="properties.recoveryPointExpiryTimeInUTC",
        details=details,
    ))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Failed"
    assert result["error"] == {
        "code": code,
        "message": "ARM says no",
        "target": "properties.recoveryPointExpiryTimeInUTC",
        "details": details,
        "httpStatus": status,
        "requestId": "arm-post-1",
        "correlationRequestId": "corr-arm-post-1",
    }
    assert result["correlationId"] == "outcome-1"
    assert app.follow_ups == []
    assert len(app.posts) == 1


def test_permanent_error_on_a_status_get_fails_with_its_request_ids() -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, accepted())
    app.transport.on("GET", OPERATION_STATUS, cloud_error(404, "NotFound", "no such operation", request_id="get-404"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Failed"
    assert result["error"]["code"] == "NotFound"
    assert result["error"]["requestId"] == "get-404"
    assert result["error"]["correlationRequestId"] == "corr-get-404"
    assert app.delays == [60]


def test_transient_errors_on_post_exhaust_the_attempts_and_report_the_last_one() -> None:
    app = App(RETRY_MAX_ATTEMPTS="3")
    app.transport.on("POST", POST_BACKUP, *(
        cloud_error(503, "ServiceUnavailable", f"try again ({attempt})", request_id=f"post-503-{attempt}")
        for attempt in (1, 2, 3)
    ))
    app.transport.on("GET", JOB_LIST, Reply(200, {"value": []}))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Failed"
    assert len(app.posts) == 3
    # a 5xx may come from after the service acted: each new POST is preceded by a look at the jobs
    assert len(app.transport.calls("GET", JOB_LIST)) == 2
    assert result["error"]["code"] == "ServiceUnavailable"
    assert result["error"]["message"] == "try again (3)"
    assert result["error"]["requestId"] == "post-503-3"
    assert result["error"]["httpStatus"] == 503
    # exponential backoff with equal jitter: base 10 s, then 20 s, each between half and all of it
    first, second = app.delays
    assert 5 <= first <= 10
    assert 10 <= second <= 20


def test_transient_errors_on_status_gets_exhaust_the_attempts() -> None:
    app = App(RETRY_MAX_ATTEMPTS="3")
    app.transport.on("POST", POST_BACKUP, accepted())
    app.transport.on("GET", OPERATION_STATUS,
                     cloud_error(500, "InternalServerError", "oops", request_id="get-500"),
                     Reply(502, b"<html>bad gateway</html>"),
                     Reply(0, raise_exc=requests.ConnectionError("connection reset by peer")))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Failed"
    assert result["error"]["code"] == "ArmConnectionFailed"
    assert "connection reset by peer" in result["error"]["message"]
    assert len(app.transport.calls("GET", OPERATION_STATUS)) == 3
    assert len(app.posts) == 1


def test_transient_errors_that_clear_up_let_the_work_continue() -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, accepted())
    app.transport.on("GET", OPERATION_STATUS, Reply(0, raise_exc=requests.ReadTimeout("read timed out")),
                     cloud_error(503, "ServiceUnavailable", "busy", retry_after="7"), operation("Succeeded"))
    app.transport.on("GET", JOB_GET, cloud_error(500, "InternalServerError", "oops"), job("Completed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Succeeded"
    assert app.delays[2] == 7
    assert len(app.posts) == 1


def test_post_whose_answer_was_lost_is_not_sent_again_when_the_job_exists() -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, Reply(0, raise_exc=requests.ReadTimeout("read timed out")))
    app.transport.on("GET", JOB_LIST, job_list(
        listed_job("job-after-timeout", friendly_name="v1win2012r", start_time="2026-11-26T12:00:01Z"),
    ))
    app.transport.on("GET", JOB_GET, job("Completed"))

    result = app.run(VM_REQUEST)

    assert len(app.posts) == 1
    assert result["status"] == "Succeeded"
    assert result["jobId"] == "job-after-timeout"
    assert app.follow_ups[0]["triggerUncertainSince"] == "2026-11-26T12:00:00Z"


def test_token_failure_is_transient() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    app = App(credential=FakeCredential(ClientAuthenticationError("IMDS not reachable")))
    script_success(app.transport)
    app.transport.on("GET", JOB_LIST, Reply(200, {"value": []}))  # retried POSTs look for a job first

    result = app.run(VM_REQUEST)

    assert result["status"] == "Succeeded"
    assert app.follow_ups[0]["lastError"]["code"] == "TokenUnavailable"
    assert app.follow_ups[0]["phase"] == "trigger"
    assert len(app.posts) == 1


# --- untrusted follow-up URLs ----------------------------------------------------------------------------

OPERATION_PATH = f"{ITEM_PATH}/operationsStatus/00000000-0000-0000-0000-000000000001?api-version=2016-12-01"
OTHER_SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"https://evil.example.com{OPERATION_PATH}", id="other-host"),
        pytest.param(f"https://management.azure.com.evil.example{OPERATION_PATH}", id="host-suffix"),
        pytest.param(f"http://management.azure.com{OPERATION_PATH}", id="http"),
        pytest.param(f"https://management.azure.com:8443{OPERATION_PATH}", id="other-port"),
        pytest.param(f"https://user@management.azure.com{OPERATION_PATH}", id="user-info"),
        pytest.param(f"{ARM}{OPERATION_PATH.replace(SUBSCRIPTION, OTHER_SUBSCRIPTION)}", id="other-subscription"),
        pytest.param(f"{ARM}/subscriptions/{SUBSCRIPTION}/../{OTHER_SUBSCRIPTION}/x", id="dot-segments"),
        pytest.param(f"{ARM}/subscriptions/{SUBSCRIPTION}/%2e%2e/{OTHER_SUBSCRIPTION}/x", id="encoded-dot-segments"),
        pytest.param(f"{ARM}/providers/Microsoft.RecoveryServices/operations", id="not-under-a-subscription"),
    ],
)
@pytest.mark.parametrize("header", ["Azure-AsyncOperation", "Location"])
def test_follow_up_url_outside_arm_and_the_subscription_is_refused(url: str, header: str) -> None:
    app = App()
    headers = {header: url} if header == "Azure-AsyncOperation" else {"Location": url}
    reply = accepted(async_operation=header == "Azure-AsyncOperation", urls=headers)
    app.transport.on("POST", POST_BACKUP, reply)
    app.transport.on("GET", r".", operation("Succeeded"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Failed"
    assert result["error"]["code"] == "UntrustedFollowUpUrl"
    assert [sent.method for sent in app.transport.sent] == ["POST"], "nothing may be sent to the URL"


def test_forged_follow_up_message_cannot_send_the_token_elsewhere() -> None:
    app = App()
    script_success(app.transport)
    assert app.deliver(trigger_backup.main, VM_REQUEST) is None
    follow_up = json.loads(app.sender.take().text)
    follow_up["asyncOperationUrl"] = f"https://evil.example.com{OPERATION_PATH}"

    result = app.deliver(poll_status.main, json.dumps(follow_up))

    assert result is not None
    document = json.loads(result)
    check_result_schema(document)
    assert document["status"] == "Failed"
    assert document["error"]["code"] == "UntrustedFollowUpUrl"
    assert document["correlationId"] == "outcome-1"
    assert [sent.url for sent in app.transport.sent] == [f"{ARM}{ITEM_PATH}/backup?api-version=2024-04-01"]


def test_unreadable_follow_up_is_settled_with_its_text() -> None:
    app = App()

    result = app.deliver(poll_status.main, '{"schemaVersion": 99, "phase": "operation"}')

    assert result is not None
    document = json.loads(result)
    check_result_schema(document)
    assert document["status"] == "Failed"
    assert document["error"]["code"] == "UnreadableFollowUp"
    assert document["rawMessage"] == '{"schemaVersion": 99, "phase": "operation"}'
    assert app.transport.sent == []


# --- rejected requests -----------------------------------------------------------------------------------

PAST = {**VM_NAMES, "properties": {"recoveryPointExpiryTimeInUTC": "2020-01-01T00:00:00Z"}}


@pytest.mark.parametrize(
    ("body", "code", "target"),
    [
        pytest.param("", "InvalidRequest", "message", id="empty"),
        pytest.param("not json, not base64!", "InvalidRequest", "message", id="not-json"),
        pytest.param('{"subscriptionId": ', "InvalidRequest", "message", id="truncated-json"),
        pytest.param("[1, 2]", "InvalidRequest", "message", id="array-of-two"),
        pytest.param(json.dumps({**VM_NAMES, "properties": {"objectType": "AzureFileShareBackupRequest"}}),
                     "InvalidRequest", "properties.objectType", id="objecttype-does-not-match-item"),
        pytest.param(json.dumps({**VM_NAMES, "protectedItemName": "Disk;x;y"}),
                     "InvalidRequest", "protectedItemName", id="unknown-workload"),
        pytest.param(json.dumps({**VM_NAMES, "containerName": "../../subscriptions"}),
                     "InvalidRequest", "containerName", id="path-traversal"),
        pytest.param(json.dumps({**VM_NAMES, "subscriptionId": "not-a-guid"}),
                     "InvalidRequest", "subscriptionId", id="bad-subscription"),
        pytest.param(json.dumps(PAST), "InvalidRequest", "properties.recoveryPointExpiryTimeInUTC", id="past-expiry"),
        pytest.param(json.dumps({**VM_NAMES, "priority": "high"}), "InvalidRequest", "priority", id="unknown-field"),
        pytest.param(json.dumps({"protectedItemId": "/subscriptions/x"}), "InvalidRequest", "protectedItemId",
                     id="bad-item-id"),
        pytest.param(
            json.dumps({**VM_NAMES, "protectedItemName": "SAPHanaDatabase;H22;h22",
                        "properties": {"backupType": "Log"}}),
            "InvalidRequest", "properties.backupType", id="hana-log",
        ),
        pytest.param(json.dumps({"specversion": "0.3", "id": "1", "data": VM_NAMES}), "InvalidRequest",
                     "specversion", id="cloudevents-0.3"),
    ],
)
def test_invalid_request_is_rejected_with_its_raw_text_and_no_http_call(body: str, code: str, target: str) -> None:
    app = App()

    result = app.run(body)

    assert result["status"] == "Rejected"
    assert result["error"]["code"] == code
    assert result["error"]["target"] == target
    assert result["rawMessage"] == body
    assert result["messageId"] == app.invocations[0].message.id
    assert app.transport.sent == []
    assert app.credential.scopes == [], "no token is even asked for"
    assert app.follow_ups == []


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"ALLOWED_SUBSCRIPTIONS": "22222222-2222-2222-2222-222222222222"}, id="subscription"),
        pytest.param({"ALLOWED_VAULTS": "someOtherVault, rg/vault2"}, id="vault"),
    ],
)
def test_request_outside_the_allow_lists_is_rejected(settings: dict[str, str]) -> None:
    app = App(credential=None, **settings)

    result = app.run(VM_REQUEST)

    assert result["status"] == "Rejected"
    assert result["error"]["code"] == "NotAllowed"
    assert result["correlationId"] == "outcome-1"
    assert result["request"]["vaultName"] == VM_NAMES["vaultName"]
    assert app.transport.sent == []


def test_request_inside_the_allow_lists_goes_through() -> None:
    vaults = f"other, linuxRsVaultRG/{VM_NAMES['vaultName']}"
    app = App(ALLOWED_SUBSCRIPTIONS=SUBSCRIPTION.upper(), ALLOWED_VAULTS=vaults)
    script_success(app.transport)

    assert app.run(VM_REQUEST)["status"] == "Succeeded"


# --- secrets --------------------------------------------------------------------------------------------


def test_the_token_never_reaches_a_log_a_follow_up_or_a_result(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    app = App(RETRY_MAX_ATTEMPTS="2")
    app.transport.on("POST", POST_BACKUP, accepted())
    app.transport.on("GET", OPERATION_STATUS, cloud_error(500, "InternalServerError", "oops"), operation("Succeeded"))
    app.transport.on("GET", JOB_GET, job("Failed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Failed"
    texts = [caplog.text, json.dumps(result), *(json.dumps(follow_up) for follow_up in app.follow_ups)]
    assert all(FAKE_TOKEN not in text for text in texts)
    assert "outcome-1" in caplog.text, "log lines carry the correlation id"
