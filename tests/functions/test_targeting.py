"""Requests by resource id and ARM events through the real function entry points, one message at a time."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.fakes import Reply, load_example
from tests.functions.harness import (
    POST_BACKUP,
    REQUEST_SCHEMA,
    SUBSCRIPTION,
    VM_NAMES,
    App,
    schema_errors,
    script_success,
)

STATUS_EXAMPLE = load_example("2024-10-01/GetBackupStatus.json")
# The official example's VM, in the official trigger example's subscription (both use the zero GUID).
VM_ID = STATUS_EXAMPLE["parameters"]["parameters"]["resourceId"]
BACKUP_STATUS = r"/backupStatus\?"
VM_GET = r"/virtualMachines/"
# What Backup Status says of that VM, placed in the trigger example's vault so the scripted answers fit.
STATUS_BODY = {
    **STATUS_EXAMPLE["responses"]["200"]["body"],
    "vaultId": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{VM_NAMES['resourceGroupName']}"
               f"/providers/Microsoft.RecoveryServices/Vaults/{VM_NAMES['vaultName']}",
    "containerName": VM_NAMES["containerName"].lower(),
    "protectedItemName": VM_NAMES["protectedItemName"].lower(),
}


def arm_event(**changes: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0", "id": "ce-vm-write-1", "type": "Microsoft.Resources.ResourceWriteSuccess",
        "source": f"/subscriptions/{SUBSCRIPTION}", "subject": VM_ID, "time": "2026-11-26T11:59:00Z",
        "data": {"resourceUri": VM_ID, "operationName": "Microsoft.Compute/virtualMachines/write",
                 "status": "Succeeded", "subscriptionId": SUBSCRIPTION, "correlationId": "arm-correlation"},
        **changes,
    }


@pytest.mark.parametrize(
    "document",
    [{"resourceId": VM_ID, "location": "southeastasia"},
     {"resourceId": VM_ID.lower(), "retentionDays": 10, "correlationId": "change-1",
      "properties": {"objectType": "IaasVMBackupRequest"}}],
)
def test_the_published_schema_and_the_app_accept_a_request_by_resource_id(document: dict[str, Any]) -> None:
    assert not schema_errors(REQUEST_SCHEMA, document)
    app = App()
    script_success(app.transport).on("POST", BACKUP_STATUS, Reply(200, STATUS_BODY))
    app.transport.on("GET", VM_GET, Reply(200, {"id": VM_ID, "location": "southeastasia"}))

    result = app.run(json.dumps(document))

    assert result["status"] == "Succeeded"
    assert result["resourceId"].lower() == VM_ID.lower()
    assert "/providers/Microsoft.Compute/virtualMachines/" in result["resourceId"]  # Azure's own spelling
    assert result["protectedItemId"].endswith(f"/protectedItems/{VM_NAMES['protectedItemName']}")
    assert app.transport.calls("POST", BACKUP_STATUS)[0].url.split("?")[0].endswith(
        "/locations/southeastasia/backupStatus")
    assert len(app.transport.calls("POST", POST_BACKUP)) == 1


@pytest.mark.parametrize(
    "document",
    [{"resourceId": VM_ID, **VM_NAMES}, {"resourceId": VM_ID, "vaultName": VM_NAMES["vaultName"]},
     {**VM_NAMES, "location": "westeurope"}, {"resourceId": VM_ID + "/../x"},
     {"resourceId": VM_ID, "properties": {"backupType": "Full"}}],
)
def test_the_published_schema_and_the_app_refuse_mixed_or_bad_forms(document: dict[str, Any]) -> None:
    assert schema_errors(REQUEST_SCHEMA, document)
    app = App()

    result = app.run(json.dumps(document))

    assert result["status"] == "Rejected"
    assert app.transport.sent == []


def test_an_arm_event_in_base64_cloudevents_data_is_a_backup_keyed_by_the_event_id() -> None:
    event = arm_event()
    data = base64.b64encode(json.dumps(event.pop("data")).encode()).decode()
    app = App()
    script_success(app.transport).on("POST", BACKUP_STATUS, Reply(200, STATUS_BODY))
    app.transport.on("GET", VM_GET, Reply(200, {"id": VM_ID, "location": "southeastasia"}))

    result = app.run(json.dumps({**event, "data_base64": data}))

    assert (result["status"], result["correlationId"]) == ("Succeeded", "ce-vm-write-1")
    assert [sent.method for sent in app.transport.sent[:3]] == ["GET", "POST", "POST"]


def test_a_resolution_retried_through_poll_status_keeps_its_key() -> None:
    app = App()
    script_success(app.transport).on(
        "POST", BACKUP_STATUS, Reply(503, headers={"Retry-After": "7"}), Reply(200, STATUS_BODY)
    )

    result = app.run(json.dumps({"resourceId": VM_ID, "location": "southeastasia", "correlationId": "retry-1"}))

    assert result["status"] == "Succeeded"
    assert app.follow_ups[0]["phase"] == "resolve"
    assert app.delays[0] == 7
    assert [invocation.function for invocation in app.invocations][:2] == ["trigger_backup", "poll_status"]
