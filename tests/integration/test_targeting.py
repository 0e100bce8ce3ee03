"""Backups by resource id and from ARM events on the local stack, and what the emulator saw of each.

Each test starts from a reset emulator, so its request log is exactly what the app did for that test.
"""

from __future__ import annotations

import json
import uuid
from itertools import groupby
from typing import Any

import pytest

from tests.integration.conftest import (
    MAIN_QUEUES,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    Suite,
    item_id,
    unique,
    vm_names,
    vm_resource_id,
)

pytestmark = pytest.mark.integration

ARM_KINDS = {"trigger", "operation_status", "operation_results", "job_get", "job_list", "items_list",
             "backup_status", "vm_get", "unknown"}
REGION = "westeurope"  # vault-it's, the emulator's default


def arm_calls(suite: Suite) -> list[str]:
    """The kinds of ARM calls the emulator logged, repeats folded (polls repeat as their timing allows)."""
    kinds = [entry["kind"] for entry in suite.admin.requests() if entry["kind"] in ARM_KINDS]
    return [kind for kind, _ in groupby(kinds)]


def arm_event(
    vm_id: str, *, event_type: str = "Microsoft.Resources.ResourceWriteSuccess",
    operation: str = "Microsoft.Compute/virtualMachines/write", cloud_events: bool = False,
) -> tuple[str, str]:
    """An ARM event as a subscription's system topic delivers it to a storage queue: (its id, its text)."""
    event_id = str(uuid.uuid4())
    data = {
        "authorization": {"scope": vm_id, "action": operation, "evidence": {"role": "Contributor"}},
        "claims": {"name": "Integration Test"},
        "correlationId": str(uuid.uuid4()),
        "resourceProvider": operation.split("/", 1)[0],
        "resourceUri": vm_id,
        "operationName": operation,
        "status": "Succeeded",
        "subscriptionId": SUBSCRIPTION,
        "tenantId": str(uuid.uuid4()),
    }
    if cloud_events:
        event: dict[str, Any] = {"specversion": "1.0", "id": event_id, "type": event_type, "subject": vm_id,
                                 "source": f"/subscriptions/{SUBSCRIPTION}", "time": "2026-11-26T12:00:00Z",
                                 "data": data}
    else:
        event = {"id": event_id, "topic": f"/subscriptions/{SUBSCRIPTION}", "subject": vm_id, "eventType": event_type,
                 "eventTime": "2026-11-26T12:00:00Z", "data": data, "dataVersion": "2", "metadataVersion": "1"}
    return event_id, json.dumps(event)


def backed_up(suite: Suite, result: dict[str, Any], vm: str) -> None:
    suite.check_schema(result)
    assert result["status"] == "Succeeded", result
    assert result["resourceId"] == vm_resource_id(vm)
    assert result["protectedItemId"] == item_id(vm_names("vault-it", vm))
    assert result["job"]["status"] == "Completed"
    assert suite.admin.stats()["triggers_by_item"] == {item_id(vm_names("vault-it", vm)): 1}


def test_by_resource_id_with_location_asks_backup_status_and_never_reads_the_vm(suite: Suite) -> None:
    correlation_id = unique("by-id")
    text = json.dumps({"resourceId": vm_resource_id("target-1"), "location": REGION, "correlationId": correlation_id})

    suite.send(text)
    result = suite.results().one(correlation_id)

    backed_up(suite, result, "target-1")
    assert arm_calls(suite) == ["backup_status", "trigger", "operation_status", "job_get"]


def test_by_resource_id_without_location_reads_the_vm_first(suite: Suite) -> None:
    correlation_id = unique("by-id-no-location")
    # As a producer might spell it: ARM ids compare case-insensitively.
    resource_id = vm_resource_id("target-2").replace("resourceGroups", "resourcegroups")

    suite.send(json.dumps({"resourceId": resource_id, "correlationId": correlation_id}))
    result = suite.results().one(correlation_id)

    backed_up(suite, result, "target-2")
    assert arm_calls(suite) == ["vm_get", "backup_status", "trigger", "operation_status", "job_get"]


@pytest.mark.parametrize("cloud_events", [False, True], ids=["eventgrid-schema", "cloudevents"])
def test_an_arm_event_from_a_system_topic_backs_its_vm_up_keyed_by_the_event_id(
    suite: Suite, cloud_events: bool
) -> None:
    event_id, text = arm_event(vm_resource_id("target-3").lower(), cloud_events=cloud_events)

    suite.send(text)
    result = suite.results().one(event_id)

    backed_up(suite, result, "target-3")
    assert result["correlationId"] == event_id
    assert arm_calls(suite) == ["vm_get", "backup_status", "trigger", "operation_status", "job_get"]


def test_not_protected_and_missing_vms_fail_without_a_trigger(suite: Suite) -> None:
    unprotected, missing = unique("not-protected"), unique("missing")
    suite.send(json.dumps({"resourceId": vm_resource_id("vm-unprotected", "rg-app"), "location": REGION,
                           "correlationId": unprotected}))
    suite.send(json.dumps({"resourceId": vm_resource_id("ghost"), "correlationId": missing}))

    results = suite.results().wait_for([unprotected, missing], timeout=30)

    for result in results.values():
        suite.check_schema(result)
        assert result["status"] == "Failed", result
        assert "protectedItemId" not in result
    assert results[unprotected]["error"]["code"] == "NotProtected"
    message = results[unprotected]["error"]["message"]
    assert "vm-unprotected" in message and "by any vault in region" in message  # the emulator's own words
    assert (results[missing]["error"]["code"], results[missing]["error"]["httpStatus"]) == ("ResourceNotFound", 404)
    assert sorted(arm_calls(suite)) == ["backup_status", "vm_get"]
    assert suite.admin.stats()["triggers_by_item"] == {}


def test_refused_inputs_reach_no_arm_endpoint(suite: Suite) -> None:
    own_trigger_id, own_trigger = arm_event(
        item_id(vm_names("vault-it", "target-4")), event_type="Microsoft.Resources.ResourceActionSuccess",
        operation="Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/backup/action",
    )
    deleted_id, deleted = arm_event(vm_resource_id("target-4"), event_type="Microsoft.Resources.ResourceDeleteSuccess",
                                    operation="Microsoft.Compute/virtualMachines/delete")
    vault_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.RecoveryServices"
    hostile = {
        unique("traversal"): f"{vm_resource_id('target-4')}/../../../../providers/Microsoft.RecoveryServices/vaults/x",
        unique("encoded"): vm_resource_id("target-4%2F..%2F..%2Fx"),
        unique("query"): vm_resource_id("target-4?api-version=2016-12-01"),
        unique("unicode"): vm_resource_id("target-4\u202e"),
        unique("vault"): f"{vault_id}/vaults/vault-it",
        unique("url"): "https://evil.example" + vm_resource_id("target-4"),
    }
    suite.send(own_trigger)
    suite.send(deleted)
    for correlation_id, resource_id in hostile.items():
        suite.send(json.dumps({"resourceId": resource_id, "correlationId": correlation_id}))

    results = suite.results().wait_for([own_trigger_id, deleted_id, *hostile], timeout=30)

    for correlation_id, result in results.items():
        suite.check_schema(result)
        assert result["status"] == "Rejected", result
        expected = "EventIgnored" if correlation_id in {own_trigger_id, deleted_id} else "InvalidRequest"
        assert result["error"]["code"] == expected, result["error"]
    suite.wait_until_idle(MAIN_QUEUES)
    assert arm_calls(suite) == []
    assert suite.admin.stats()["triggers_by_item"] == {}
