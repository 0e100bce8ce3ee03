"""Message -> trigger_backup -> poll_status ... -> one result, for every workload and every transport.

HTTP is answered at the requests layer from the official REST examples; the clock moves by
exactly the delay each follow-up was sent with, so the delays asserted here are the waits a
request would really see.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from tests.fakes import ARM, Reply
from tests.functions.harness import (
    EXAMPLE_JOB_ID,
    JOB_GET,
    JOB_LIST,
    OPERATION_RESULT,
    OPERATION_STATUS,
    POST_BACKUP,
    REQUEST_SCHEMA,
    SUBSCRIPTION,
    TRIGGER_EXAMPLE,
    VAULT_PATH,
    VM_NAMES,
    App,
    accepted,
    as_base64,
    as_cloud_event,
    as_event_grid,
    job,
    job_list,
    listed_job,
    schema_errors,
    script_success,
)

API = "api-version=2024-04-01"
NOW_PLUS_30_DAYS = "2026-12-26T12:00:00Z"
NOW_PLUS_45_DAYS = "2027-01-10T12:00:00Z"
# POST 202 (Retry-After 60), operation InProgress (no Retry-After: poll interval 30),
# operation Succeeded (job found: first job look after 60), job InProgress (60), job Completed.
HAPPY_DELAYS = [60, 30, 60, 60]


def vm_item_path(container: str = VM_NAMES["containerName"], item: str = VM_NAMES["protectedItemName"]) -> str:
    return f"{VAULT_PATH}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}"


def item_id(resource_group: str, vault: str, container: str, item: str) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{resource_group}/providers/Microsoft.RecoveryServices"
        f"/vaults/{vault}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}"
    )


def names(resource_group: str, vault: str, container: str, item: str) -> dict[str, str]:
    return {
        "subscriptionId": SUBSCRIPTION, "resourceGroupName": resource_group, "vaultName": vault,
        "fabricName": "Azure", "containerName": container, "protectedItemName": item,
    }


def assert_succeeded(result: dict[str, Any], *, item: str, correlation_id: str) -> None:
    assert result["status"] == "Succeeded"
    assert result["correlationId"] == correlation_id
    assert result["protectedItemId"] == item
    assert result["jobId"] == EXAMPLE_JOB_ID
    assert result["job"]["status"] == "Completed"
    assert result["job"]["operation"] == "Backup"
    assert "error" not in result


# --- every workload, message to Succeeded ---------------------------------------------------------

SQL_ITEM = item_id("sqlRG", "sqlVault", "VMAppContainer;Compute;sqlRG;sqlvm01", "SQLDataBase;MSSQLSERVER;salesdb")
HANA_ITEM = item_id("hanaRG", "hanaVault", "VMAppContainer;Compute;hanaRG;hanavm", "SAPHanaDatabase;H22;h22")
ASE_ITEM = item_id("aseRG", "aseVault", "VMAppContainer;Compute;aseRG;asevm", "SAPAseDatabase;ASE;asedb")
SHARE_ITEM = item_id("filesRG", "filesVault", "StorageContainer;Storage;filesRG;filesacct", "AzureFileShare;share01")

WORKLOADS = [
    pytest.param(
        {**VM_NAMES, "properties": {"objectType": "IaasVMBackupRequest",
                                    "recoveryPointExpiryTimeInUTC": "2026-12-31T00:00:00Z"}},
        vm_item_path(),
        {"objectType": "IaasVMBackupRequest", "recoveryPointExpiryTimeInUTC": "2026-12-31T00:00:00Z"},
        id="vm-six-names-explicit-expiry",
    ),
    pytest.param(
        {key: value for key, value in VM_NAMES.items() if key != "fabricName"},
        vm_item_path(),
        {"objectType": "IaasVMBackupRequest", "recoveryPointExpiryTimeInUTC": NOW_PLUS_30_DAYS},
        id="vm-names-default-fabric-and-expiry",
    ),
    pytest.param(
        {**VM_NAMES, "retentionDays": 10},
        vm_item_path(),
        {"objectType": "IaasVMBackupRequest", "recoveryPointExpiryTimeInUTC": "2026-12-06T12:00:00Z"},
        id="vm-retention-days",
    ),
    pytest.param(
        {"protectedItemId": SHARE_ITEM},
        SHARE_ITEM,
        {"objectType": "AzureFileShareBackupRequest", "recoveryPointExpiryTimeInUTC": NOW_PLUS_30_DAYS},
        id="file-share-by-id",
    ),
    pytest.param(
        {**names("sqlRG", "sqlVault", "VMAppContainer;Compute;sqlRG;sqlvm01", "SQLDataBase;MSSQLSERVER;salesdb"),
         "properties": {"backupType": "Full"}},
        SQL_ITEM,
        {"objectType": "AzureWorkloadBackupRequest", "backupType": "Full",
         "recoveryPointExpiryTimeInUTC": NOW_PLUS_45_DAYS},
        id="sql-full",
    ),
    pytest.param(
        {"protectedItemId": HANA_ITEM,
         "properties": {"objectType": "AzureWorkloadBackupRequest", "backupType": "Full"}},
        HANA_ITEM,
        {"objectType": "AzureWorkloadBackupRequest", "backupType": "Full",
         "recoveryPointExpiryTimeInUTC": NOW_PLUS_45_DAYS},
        id="sap-hana-full",
    ),
    pytest.param(
        {"protectedItemId": ASE_ITEM, "properties": {"backupType": "CopyOnlyFull", "enableCompression": True}},
        ASE_ITEM,
        {"objectType": "AzureWorkloadBackupRequest", "backupType": "CopyOnlyFull", "enableCompression": True,
         "recoveryPointExpiryTimeInUTC": NOW_PLUS_30_DAYS},
        id="sap-ase-copy-only-full",
    ),
    pytest.param(
        {"protectedItemId": ASE_ITEM, "properties": {"backupType": "Full"}},
        ASE_ITEM,
        {"objectType": "AzureWorkloadBackupRequest", "backupType": "Full",
         "recoveryPointExpiryTimeInUTC": NOW_PLUS_45_DAYS},
        id="sap-ase-full",
    ),
]


@pytest.mark.parametrize(("request_document", "item", "properties"), WORKLOADS)
def test_each_workload_from_message_to_succeeded(
    request_document: dict[str, Any], item: str, properties: dict[str, Any]
) -> None:
    document = {**request_document, "correlationId": "walk-1"}
    assert not schema_errors(REQUEST_SCHEMA, document), "the published request schema refuses it"
    app = App()
    script_success(app.transport)

    result = app.run(json.dumps(document))

    assert_succeeded(result, item=item, correlation_id="walk-1")
    assert app.posts == [f"{ARM}{item}/backup?{API}"]
    assert app.transport.calls("POST")[0].body == {"properties": properties}
    assert result["request"]["properties"] == properties
    assert result["request"]["protectedItemId"] == item
    assert app.delays == HAPPY_DELAYS
    assert result["timings"]["requestedAt"] == "2026-11-26T12:00:00Z"
    assert result["timings"]["elapsedSeconds"] == sum(HAPPY_DELAYS)


def test_follow_up_urls_are_used_exactly_as_arm_returned_them() -> None:
    app = App()
    script_success(app.transport)

    app.run(json.dumps(VM_NAMES))

    # The example's URLs differ from the request path in case, container name and api-version.
    given = TRIGGER_EXAMPLE["responses"]["202"]["headers"]["Azure-AsyncOperation"]
    assert [sent.url for sent in app.transport.calls("GET", OPERATION_STATUS)] == [given, given]
    assert [sent.url for sent in app.transport.calls("GET", JOB_GET)] == [
        f"{ARM}{VAULT_PATH}/backupJobs/{EXAMPLE_JOB_ID}?{API}"
    ] * 2
    assert app.follow_ups[0]["asyncOperationUrl"] == given


def test_one_invocation_per_step_and_exactly_one_result() -> None:
    app = App()
    script_success(app.transport)

    app.run(json.dumps(VM_NAMES))

    functions = [invocation.function for invocation in app.invocations]
    assert functions == ["trigger_backup"] + ["poll_status"] * len(HAPPY_DELAYS)
    assert [invocation.result is not None for invocation in app.invocations].count(True) == 1
    assert app.invocations[-1].result is not None
    assert [follow_up["phase"] for follow_up in app.follow_ups] == ["operation", "operation", "job", "job"]


# --- transports and envelopes ---------------------------------------------------------------------

REQUEST = {**VM_NAMES, "correlationId": "envelope-1"}


@pytest.mark.parametrize(
    ("body", "correlation_id"),
    [
        pytest.param(json.dumps(REQUEST), "envelope-1", id="plain-json"),
        pytest.param(json.dumps(REQUEST).encode("utf-8"), "envelope-1", id="plain-json-bytes"),
        pytest.param(b"\xef\xbb\xbf" + json.dumps(REQUEST).encode(), "envelope-1", id="plain-json-with-bom"),
        pytest.param(as_base64(REQUEST), "envelope-1", id="base64"),
        pytest.param(as_event_grid(REQUEST), "envelope-1", id="event-grid"),
        pytest.param(as_event_grid(VM_NAMES, event_id="eg-42"), "eg-42", id="event-grid-id-as-correlation"),
        pytest.param(
            json.dumps({"id": "eg-1", "eventType": "x", "data": json.dumps(REQUEST)}), "envelope-1",
            id="event-grid-data-as-string",
        ),
        pytest.param(base64.b64encode(as_event_grid(REQUEST).encode()).decode(), "envelope-1", id="base64-event-grid"),
        pytest.param(as_cloud_event(REQUEST), "envelope-1", id="cloudevents"),
        pytest.param(as_cloud_event(VM_NAMES, event_id="ce-42"), "ce-42", id="cloudevents-id-as-correlation"),
        pytest.param(
            json.dumps({"specversion": "1.0", "id": "ce-2", "source": "/s", "type": "t",
                        "data_base64": as_base64(REQUEST)}),
            "envelope-1", id="cloudevents-data-base64",
        ),
        pytest.param(as_base64(json.loads(as_cloud_event(REQUEST))), "envelope-1", id="base64-cloudevents"),
    ],
)
def test_every_transport_reaches_the_same_backup(body: str | bytes, correlation_id: str) -> None:
    app = App()
    script_success(app.transport)

    result = app.run(body)

    assert_succeeded(result, item=vm_item_path(), correlation_id=correlation_id)
    assert app.posts == [f"{ARM}{vm_item_path()}/backup?{API}"]
    assert app.transport.calls("POST")[0].body == {
        "properties": {"objectType": "IaasVMBackupRequest", "recoveryPointExpiryTimeInUTC": NOW_PLUS_30_DAYS}
    }


def test_without_a_correlation_id_the_queue_message_id_is_carried() -> None:
    app = App()
    script_success(app.transport)

    result = app.run(json.dumps(VM_NAMES))

    assert result["correlationId"] == app.invocations[0].message.id
    assert all(follow_up["correlationId"] == result["correlationId"] for follow_up in app.follow_ups)


# --- tracking off, Location only, redelivery ------------------------------------------------------


def test_tracking_off_ends_triggered_with_the_job_id() -> None:
    app = App(TRACK_BACKUP_JOBS="false")
    script_success(app.transport)

    result = app.run(json.dumps({**VM_NAMES, "correlationId": "untracked"}))

    assert result["status"] == "Triggered"
    assert result["jobId"] == EXAMPLE_JOB_ID
    assert result["correlationId"] == "untracked"
    assert app.transport.calls("GET", JOB_GET) == []
    assert app.delays == [60, 30]


def test_location_only_answer_is_followed_until_204_then_the_job_is_found_by_listing() -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, accepted(async_operation=False, retry_after=45))
    app.transport.on("GET", OPERATION_RESULT, Reply(202, headers={"Retry-After": "20"}),
                     Reply(204))
    app.transport.on("GET", JOB_LIST, job_list(
        listed_job("job-from-list", friendly_name="v1win2012r", start_time="2026-11-26T12:00:10Z"),
    ))
    app.transport.on("GET", JOB_GET, job("Completed"))

    result = app.run(json.dumps({**VM_NAMES, "correlationId": "location-only"}))

    location = TRIGGER_EXAMPLE["responses"]["202"]["headers"]["Location"]
    assert [sent.url for sent in app.transport.calls("GET", OPERATION_RESULT)] == [location, location]
    assert app.transport.calls("GET", OPERATION_STATUS) == []
    assert result["status"] == "Succeeded"
    assert result["jobId"] == "job-from-list"
    assert app.transport.calls("GET", JOB_GET)[0].url == f"{ARM}{VAULT_PATH}/backupJobs/job-from-list?{API}"
    assert app.delays[:2] == [45, 20]
    assert len(app.posts) == 1


def test_location_only_with_tracking_off_ends_triggered_when_the_operation_is_done() -> None:
    app = App(TRACK_BACKUP_JOBS="false")
    app.transport.on("POST", POST_BACKUP, accepted(async_operation=False))
    app.transport.on("GET", OPERATION_RESULT, Reply(202), Reply(204))

    result = app.run(json.dumps(VM_NAMES))

    assert result["status"] == "Triggered"
    assert "jobId" not in result
    assert app.transport.calls("GET", JOB_LIST) == []
    assert app.delays == [60, 30]


def test_redelivered_request_finds_its_job_by_listing_instead_of_posting_again() -> None:
    app = App()
    first_delivery = app.clock() - timedelta(minutes=2)
    app.transport.on("GET", JOB_LIST, job_list(
        # an older backup of the same VM and a new job of another item do not match
        listed_job("old-job", friendly_name="v1win2012r", start_time="2026-11-25T12:00:00Z"),
        listed_job("other-item", friendly_name="othervm", start_time="2026-11-26T11:58:30Z"),
        listed_job("configure", friendly_name="v1win2012r", start_time="2026-11-26T11:58:30Z",
                   operation="ConfigureBackup"),
        listed_job("the-job", friendly_name="v1win2012r", start_time="2026-11-26T11:58:31.1234567Z"),
    ))
    app.transport.on("GET", JOB_GET, job("InProgress"), job("Completed"))
    app.transport.on("POST", POST_BACKUP, accepted())

    result = app.run(json.dumps({**VM_NAMES, "correlationId": "redelivered"}), dequeue_count=2,
                     insertion_time=first_delivery)

    assert app.posts == []
    assert result["status"] == "Succeeded"
    assert result["jobId"] == "the-job"
    listing = app.transport.calls("GET", JOB_LIST)
    assert len(listing) == 1
    assert listing[0].url.startswith(f"{ARM}{VAULT_PATH}/backupJobs?{API}&%24filter=")
    assert "operation+eq+%27Backup%27" in listing[0].url
    assert app.delays == [60, 60]


def test_redelivered_request_with_no_job_listed_posts_once() -> None:
    app = App()
    script_success(app.transport)
    app.transport.on("GET", JOB_LIST, job_list(
        listed_job("old-job", friendly_name="v1win2012r", start_time="2026-11-25T12:00:00Z"),
    ))

    result = app.run(json.dumps(VM_NAMES), dequeue_count=2, insertion_time=app.clock() - timedelta(minutes=1))

    assert len(app.transport.calls("GET", JOB_LIST)) == 1
    assert len(app.posts) == 1
    assert app.transport.sent[0].method == "GET"  # the listing comes before the POST
    assert result["status"] == "Succeeded"
