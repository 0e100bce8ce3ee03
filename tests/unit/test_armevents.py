"""shared.armevents: which Azure Resource Manager events ask for a backup, through the real envelopes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.armevents import ArmEvent
from shared.envelopes import unwrap
from shared.errors import RequestRejected
from tests.unit.builders import RG, SUB, VAULT, names, vm_id

VM = vm_id()
VM_AS_EVENTS_SPELL_IT = VM.replace("resourceGroups", "resourcegroups")
OWN_TRIGGER = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}"
    "/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;testrg;v1win2012r"
    "/protectedItems/VM;iaasvmcontainerv2;testrg;v1win2012r"
)
WRITE = "Microsoft.Resources.ResourceWriteSuccess"
ACTION = "Microsoft.Resources.ResourceActionSuccess"


def arm_data(resource: str | None = VM_AS_EVENTS_SPELL_IT, operation: str | None = None,
             **extra: Any) -> dict[str, Any]:
    """An ARM event's data as the event-schema-resource-groups doc shows it (claims trimmed)."""
    data: dict[str, Any] = {
        "authorization": {"scope": resource, "action": operation, "evidence": {"role": "Contributor"}},
        "claims": {"name": "Jane Operator", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "jane@x"},
        "correlationId": "7dcbf0e4-3c3a-4a3d-9a26-2f7e1c9b1a11",
        "httpRequest": {"clientIpAddress": "203.0.113.7", "method": "PUT"},
        "resourceProvider": "Microsoft.Compute",
        "resourceUri": resource,
        "operationName": operation if operation is not None else "Microsoft.Compute/virtualMachines/write",
        "status": "Succeeded",
        "subscriptionId": SUB,
        "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        **extra,
    }
    return {key: value for key, value in data.items() if value is not None}


def event_grid(event_type: str = WRITE, subject: str | None = VM_AS_EVENTS_SPELL_IT, **data: Any) -> bytes:
    event = {"id": "evt-arm-1", "topic": f"/subscriptions/{SUB}", "eventType": event_type,
             "eventTime": "2026-11-26T12:00:00Z", "data": arm_data(subject, **data), "dataVersion": "2",
             "metadataVersion": "1"}
    if subject is not None:
        event["subject"] = subject
    return json.dumps(event).encode()


def cloud_event(event_type: str = WRITE, subject: str | None = VM_AS_EVENTS_SPELL_IT, **data: Any) -> bytes:
    event = {"specversion": "1.0", "id": "ce-arm-1", "source": f"/subscriptions/{SUB}", "type": event_type,
             "time": "2026-11-26T12:00:00Z", "data": arm_data(subject, **data)}
    if subject is not None:
        event["subject"] = subject
    return json.dumps(event).encode()


def event_of(body: bytes) -> ArmEvent:
    event = ArmEvent.of(unwrap(body))
    assert event is not None
    return event


def refused(body: bytes) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        event_of(body).backup_request()
    return caught.value


# --- acted on ------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [event_grid, cloud_event])
@pytest.mark.parametrize(
    ("event_type", "operation"),
    [
        (WRITE, "Microsoft.Compute/virtualMachines/write"),
        (ACTION, "Microsoft.Compute/virtualMachines/deallocate/action"),
        (ACTION.lower(), "Microsoft.Compute/virtualMachines/start/action"),
        (WRITE, "Microsoft.Resources/tags/write"),
    ],
)
def test_a_vm_written_or_acted_on_asks_for_its_backup(schema: Any, event_type: str, operation: str) -> None:
    request = event_of(schema(event_type, operation=operation)).backup_request()

    assert request == {"resourceId": VM}  # canonical spelling, nothing else: the event id is the key


@pytest.mark.parametrize("where", ["subject", "data.resourceUri"])
def test_either_subject_or_resource_uri_is_enough(where: str) -> None:
    event = json.loads(event_grid())
    if where == "subject":
        del event["data"]["resourceUri"]
    else:
        del event["subject"]

    assert event_of(json.dumps(event).encode()).backup_request() == {"resourceId": VM}


def test_the_event_id_travels_in_the_envelope() -> None:
    assert unwrap(event_grid()).event_id == "evt-arm-1"
    assert unwrap(cloud_event()).event_id == "ce-arm-1"


def test_the_summary_leaves_out_claims_and_authorization() -> None:
    summary = event_of(event_grid()).summary()

    assert summary == {"eventType": WRITE, "subject": VM_AS_EVENTS_SPELL_IT, "resourceUri": VM_AS_EVENTS_SPELL_IT,
                       "operationName": "Microsoft.Compute/virtualMachines/write"}


# --- ignored -------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [event_grid, cloud_event])
@pytest.mark.parametrize(
    ("event_type", "subject", "operation", "target", "reason"),
    [
        ("Microsoft.Resources.ResourceDeleteSuccess", VM, "Microsoft.Compute/virtualMachines/delete",
         "eventType", "ResourceDeleteSuccess is not acted on"),
        ("Microsoft.Resources.ResourceWriteFailure", VM, None, "eventType", "is not acted on"),
        ("Microsoft.Resources.ResourceWriteCancel", VM, None, "eventType", "is not acted on"),
        ("Microsoft.Resources.ResourceActionFailure", VM, "Microsoft.Compute/virtualMachines/start/action",
         "eventType", "is not acted on"),
        ("Microsoft.Resources.ResourceDeleteFailure", VM, None, "eventType", "is not acted on"),
        (ACTION, VM, "Microsoft.Compute/virtualMachines/delete", "data.operationName", "deletes the resource"),
        (ACTION, OWN_TRIGGER, "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/"
         "protectedItems/backup/action", "data.operationName", "would loop"),
        (ACTION, f"/subscriptions/{SUB}/providers/Microsoft.RecoveryServices/locations/westeurope",
         "Microsoft.RecoveryServices/locations/backupStatus/action", "data.operationName", "would loop"),
        (WRITE, f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}",
         "Microsoft.RecoveryServices/vaults/write", "data.operationName", "would loop"),
        (ACTION, VM, "microsoft.recoveryservices/backupProtectedItem/write", "data.operationName", "would loop"),
        ("Microsoft.Resources.ResourceDeleteSuccess", OWN_TRIGGER, None, "data.operationName", "would loop"),
        (WRITE, f"{VM}/extensions/VMSnapshot", "Microsoft.Compute/virtualMachines/extensions/write",
         "data.resourceUri", "about a Microsoft.Compute/virtualMachines/extensions, not a virtual machine"),
        (WRITE, f"/subscriptions/{SUB}/resourceGroups/testrg/providers/Microsoft.Compute/disks/d1",
         "Microsoft.Compute/disks/write", "data.resourceUri", "about a Microsoft.Compute/disks"),
        (WRITE, f"{VM}/providers/Microsoft.Authorization/locks/l1", "Microsoft.Authorization/locks/write",
         "data.resourceUri", "about a Microsoft.Authorization/locks"),
        (WRITE, f"/subscriptions/{SUB}/resourceGroups/testrg", "Microsoft.Resources/subscriptions/resourceGroups/"
         "write", "data.resourceUri", "about a Microsoft.Resources/resourceGroups"),
    ],
)
def test_events_not_worth_acting_on_are_ignored(
    schema: Any, event_type: str, subject: str, operation: str | None, target: str, reason: str
) -> None:
    error = refused(schema(event_type, subject, operation=operation))

    assert error.info.code == "EventIgnored"
    assert error.field_name == target
    assert reason in error.reason


def test_an_endless_operation_name_is_quoted_short() -> None:
    error = refused(event_grid(ACTION, operation="Microsoft.RecoveryServices/" + "x" * 5000))

    assert error.info.code == "EventIgnored"
    assert len(error.info.message) < 400


# --- not readable --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "data", "target"),
    [
        (f"{VM}/../../../otherVm", {}, "data.resourceUri"),
        (VM.replace("v1win2012r", "vm%2F..%2Fx"), {}, "data.resourceUri"),
        ("not an id", {}, "data.resourceUri"),
        (VM, {"resourceUri": vm_id(name="another")}, "data.resourceUri"),
        (VM, {"resourceUri": 5}, "data.resourceUri"),
        (VM, {"operationName": ["x"]}, "data.operationName"),
        (None, {"resourceUri": None}, "subject"),
    ],
)
def test_an_arm_event_that_does_not_name_its_resource_is_invalid(
    subject: str | None, data: dict[str, Any], target: str
) -> None:
    event = json.loads(event_grid(subject=subject))
    event["data"].update(data)
    event["data"] = {key: value for key, value in event["data"].items() if value is not None}

    error = refused(json.dumps(event).encode())

    assert (error.info.code, error.field_name) == ("InvalidRequest", target)


def test_a_vm_name_azure_refuses_is_invalid_even_in_an_event() -> None:
    error = refused(event_grid(subject=vm_id(name="-bad")))

    assert (error.info.code, error.field_name) == ("InvalidRequest", "data.resourceUri")


# --- not ARM events ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(names()).encode(),
        json.dumps({"id": "e", "eventType": "Contoso.Backup.Requested", "data": names()}).encode(),
        json.dumps({"specversion": "1.0", "id": "e", "type": "Contoso.Backup.Requested", "data": names()}).encode(),
        json.dumps({"specversion": "1.0", "id": "e", "data": names()}).encode(),
        json.dumps({"id": "e", "eventType": "Microsoft.Storage.BlobCreated", "data": names()}).encode(),
    ],
)
def test_other_messages_are_not_arm_events(body: bytes) -> None:
    assert ArmEvent.of(unwrap(body)) is None
