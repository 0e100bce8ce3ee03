"""shared.targeting and shared.resolution: the request by resource id, and what Backup Status - Get makes of it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shared.armid import ProtectedItemRef
from shared.backup import Finish
from shared.errors import ArmProtocolError, RequestRejected, ResourceNotProtected
from shared.followup import FollowUp, Phase
from shared.resolution import Proceed, after_backup_status
from shared.results import ResultStatus
from shared.settings import Settings
from shared.targeting import (
    BackupStatus,
    ResourceTarget,
    parse_location,
    parse_target,
    read_backup_status,
    read_location,
    resolve,
)
from tests.fakes import load_example
from tests.unit.builders import (
    ITEMS,
    NOW,
    OTHER_SUB,
    RG,
    SUB,
    VAULT,
    VM_GROUP,
    VM_NAME,
    backup_status_body,
    by_resource,
    item_id,
    make_settings,
    resource_target,
    vm_id,
)

EXAMPLE = load_example("2024-10-01/GetBackupStatus.json")
VM_ITEM = ProtectedItemRef.parse(item_id("vm"))


def target_of(document: dict[str, Any], settings: Settings | None = None) -> ResourceTarget:
    return parse_target(document, settings=settings or make_settings(), now=NOW, fallback_correlation_id="fallback")


def refused(document: dict[str, Any], settings: Settings | None = None) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        target_of(document, settings)
    return caught.value


def status(**changes: Any) -> BackupStatus:
    return read_backup_status(backup_status_body(**changes))


# --- the request form ----------------------------------------------------------------------


def test_a_bare_resource_id_gets_a_vms_defaults() -> None:
    target = target_of(by_resource())

    assert target.resource.id == vm_id()
    assert target.location is None
    assert target.correlation_id == "fallback"
    assert target.properties == {"objectType": "IaasVMBackupRequest",
                                 "recoveryPointExpiryTimeInUTC": "2026-12-26T12:00:00Z"}


def test_every_optional_field_is_read() -> None:
    target = target_of(by_resource(location=" WestEurope ", retentionDays=7, correlationId="change-1",
                                   properties={"objectType": "iaasvmbackuprequest"}))

    assert target.location == "westeurope"
    assert target.correlation_id == "change-1"
    assert target.properties == {"objectType": "IaasVMBackupRequest",
                                 "recoveryPointExpiryTimeInUTC": "2026-12-03T12:00:00Z"}


def test_an_expiry_instant_is_kept() -> None:
    target = target_of(by_resource(properties={"recoveryPointExpiryTimeInUTC": "2027-01-31T00:00:00Z"}))

    assert target.properties["recoveryPointExpiryTimeInUTC"] == "2027-01-31T00:00:00Z"


@pytest.mark.parametrize(
    ("document", "target", "reason"),
    [
        (by_resource(vaultName=VAULT), "vaultName", "give either resourceId or the item"),
        (by_resource(protectedItemId=item_id()), "protectedItemId", "give either resourceId or the item"),
        (by_resource(resourceType="VM"), "resourceType", "is not a field of a request by resourceId"),
        ({"resourceId": None}, "resourceId", "must be a string"),
        (by_resource(resourceId=f"{vm_id()}/../../x"), "resourceId", "'.' or '..'"),
        (by_resource(resourceId=item_id()), "resourceId", "must name a virtual machine"),
        (by_resource(location="West Europe"), "location", "Azure region name"),
        (by_resource(location="westeurope/../x"), "location", "Azure region name"),
        (by_resource(location=""), "location", "Azure region name"),
        (by_resource(location=5), "location", "Azure region name"),
        (by_resource(properties={"objectType": "AzureFileShareBackupRequest"}), "properties.objectType",
         "VM items take IaasVMBackupRequest"),
        (by_resource(properties={"backupType": "Full"}), "properties.backupType", "is not a property"),
        (by_resource(properties=[]), "properties", "must be a JSON object"),
        (by_resource(retentionDays=0), "retentionDays", "whole number of days"),
        (by_resource(retentionDays=3, properties={"recoveryPointExpiryTimeInUTC": "2027-01-01T00:00:00Z"}),
         "retentionDays", "give either"),
        (by_resource(properties={"recoveryPointExpiryTimeInUTC": "2020-01-01T00:00:00Z"}),
         "properties.recoveryPointExpiryTimeInUTC", "in the past"),
        (by_resource(correlationId="has space"), "correlationId", "printable ASCII"),
    ],
)
def test_what_a_request_by_resource_id_is_refused_for(document: dict[str, Any], target: str, reason: str) -> None:
    error = refused(document)

    assert (error.field_name, error.info.code) == (target, "InvalidRequest")
    assert reason in error.reason


def test_a_subscription_outside_the_allow_list_is_refused_before_anything_is_asked() -> None:
    error = refused(by_resource(), make_settings(ALLOWED_SUBSCRIPTIONS=OTHER_SUB))

    assert (error.info.code, error.field_name) == ("NotAllowed", "resourceId")
    assert SUB in error.reason


def test_the_subscription_allow_list_ignores_case() -> None:
    target = target_of(by_resource(), make_settings(ALLOWED_SUBSCRIPTIONS=SUB.upper()))

    assert target.resource.subscription_id == SUB


def test_vault_allow_lists_wait_for_the_resolved_vault() -> None:
    assert target_of(by_resource(), make_settings(ALLOWED_VAULTS="some-other-vault")).resource.id == vm_id()


def test_a_target_round_trips_and_is_checked_again_on_read() -> None:
    target = resource_target(location="westeurope", correlationId="c-9")

    assert ResourceTarget.from_json(target.to_json()) == target
    assert "location" not in resource_target().to_json()


@pytest.mark.parametrize(
    ("change", "target"),
    [
        ({"resourceId": f"{vm_id()}/../x"}, "resourceId"),
        ({"resourceId": item_id()}, "resourceId"),
        ({"location": "west europe"}, "location"),
        ({"properties": None}, "target"),
        ({"correlationId": None}, "target"),
        ({"correlationId": "a b"}, "target"),
    ],
)
def test_a_tampered_target_is_refused(change: dict[str, Any], target: str) -> None:
    document = {**resource_target().to_json(), **change}

    with pytest.raises(RequestRejected) as caught:
        ResourceTarget.from_json(document)
    assert caught.value.field_name == target


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("eastus2", "eastus2"), ("USGovVirginia", "usgovvirginia")]
)
def test_locations(value: object, expected: str | None) -> None:
    assert parse_location(value) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [({"location": "westeurope"}, "westeurope"), ({"location": "WestEurope"}, "westeurope"), ({}, None),
     ({"location": "West Europe"}, None), ({"location": 3}, None), ({"location": "../x"}, None)],
)
def test_read_location(body: dict[str, Any], expected: str | None) -> None:
    assert read_location(body) == expected


# --- Backup Status - Get -------------------------------------------------------------------


def test_the_official_example_reads_and_resolves() -> None:
    body = EXAMPLE["responses"]["200"]["body"]
    target = parse_target({"resourceId": EXAMPLE["parameters"]["parameters"]["resourceId"]}, settings=make_settings(),
                          now=NOW, fallback_correlation_id="c")

    read = read_backup_status(body)
    request = resolve(target, "southeastasia", read)

    assert read == BackupStatus("Protected", body["vaultId"], "Azure", body["containerName"],
                                body["protectedItemName"], "Success", "ErrorMessage")
    assert request.item == ProtectedItemRef(SUB, "testRg", "testVault", "Azure",
                                            "IaasVMContainer;iaasvmcontainerv2;testRg;testVm",
                                            "VM;iaasvmcontainerv2;testRg;testVm")
    assert request.properties == target.properties
    assert request.correlation_id == "c"


def test_a_protected_vm_resolves_to_its_item_as_azure_spells_it_elsewhere() -> None:
    request = resolve(resource_target(correlationId="c-2"), "westeurope", status())

    assert request.item == VM_ITEM
    assert request.item.id == item_id("vm")
    assert request.correlation_id == "c-2"


@pytest.mark.parametrize(
    ("container", "item"),
    [
        (f"iaasvmcontainer;iaasvmcontainerv2;{VM_GROUP};{VM_NAME}", f"vm;iaasvmcontainerv2;{VM_GROUP};{VM_NAME}"),
        (f"IAASVMCONTAINER;iaasvmcontainerv2;{VM_GROUP};{VM_NAME}", f"VM;iaasvmcontainerv2;{VM_GROUP};{VM_NAME}"),
        ITEMS["vm"],
        (f"IaaSVMContainer;iaasvmcontainerv2;{VM_GROUP};{VM_NAME}", f"Vm;iaasvmcontainerv2;{VM_GROUP};{VM_NAME}"),
    ],
)
def test_case_differences_in_the_names_the_service_returns_make_one_item(container: str, item: str) -> None:
    request = resolve(resource_target(), "westeurope", status(containerName=container, protectedItemName=item))

    assert request.item == VM_ITEM


@pytest.mark.parametrize("vaults", ["Vaults", "vaults", "VAULTS"])
def test_the_vault_id_may_spell_its_type_in_any_case(vaults: str) -> None:
    vault_id = f"/Subscriptions/{SUB.upper()}/resourcegroups/{RG}/providers/microsoft.recoveryservices/{vaults}/{VAULT}"

    assert resolve(resource_target(), "westeurope", status(vaultId=vault_id)).item == VM_ITEM


@pytest.mark.parametrize("protection", ["Protected", "ProtectionFailed", "Protecting", "protected"])
def test_an_item_in_a_vault_resolves_whatever_its_health(protection: str) -> None:
    assert resolve(resource_target(), "westeurope", status(protectionStatus=protection)).item == VM_ITEM


def test_a_missing_fabric_is_azure() -> None:
    assert resolve(resource_target(), "westeurope", status(fabricName=None)).item.fabric == "Azure"


@pytest.mark.parametrize(
    "changes",
    [
        {"protectionStatus": "NotProtected", "vaultId": None, "containerName": None, "protectedItemName": None,
         "policyName": None, "errorCode": None, "errorMessage": None},
        {"protectionStatus": "NotProtected"},
        {"protectionStatus": "Invalid"},
        {"vaultId": None},
        {"protectionStatus": None, "vaultId": None},
    ],
)
def test_not_protected(changes: dict[str, Any]) -> None:
    with pytest.raises(ResourceNotProtected) as caught:
        resolve(resource_target(), "westeurope", status(**changes))

    info = caught.value.info
    assert (info.code, info.target) == ("NotProtected", "resourceId")
    assert info.message.startswith(f"{vm_id()} is not protected by a Recovery Services vault in westeurope")
    assert info.details == ()


@pytest.mark.parametrize(("code", "used"), [(None, True), ("Success", False), ("success", False)])
def test_a_message_without_a_code_is_the_services_and_beside_success_a_placeholder(code: str | None,
                                                                                   used: bool) -> None:
    answer = status(protectionStatus="NotProtected", vaultId=None, errorCode=code, errorMessage="Not in a vault.")

    with pytest.raises(ResourceNotProtected) as caught:
        resolve(resource_target(), "westeurope", answer)

    assert (caught.value.info.message == "Not in a vault.") is used
    assert caught.value.info.details == ()


def test_not_protected_carries_the_services_own_message() -> None:
    answer = status(protectionStatus="NotProtected", vaultId=None, errorCode="UserErrorVmNotProtected",
                    errorMessage="The VM is not protected.")

    with pytest.raises(ResourceNotProtected) as caught:
        resolve(resource_target(), "westeurope", answer)

    info = caught.value.info
    assert (info.code, info.message) == ("NotProtected", "The VM is not protected.")
    assert info.details == ({"code": "UserErrorVmNotProtected", "message": "The VM is not protected."},)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"vaultId": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/x"},
         "not a Recovery Services vault"),
        ({"vaultId": "vault1"}, "vaultId"),
        ({"vaultId": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/../x"},
         "'.' or '..'"),
        ({"vaultId": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/1bad"},
         "vaultName"),
        ({"containerName": "iaasvmcontainer;iaasvmcontainerv2;rg/../x;vm"}, "containerName"),
        ({"containerName": None}, "containerName"),
        ({"protectedItemName": "vm;a?b"}, "protectedItemName"),
        ({"protectedItemName": None}, "protectedItemName"),
        ({"protectedItemName": "AzureFileShare;share1"}, "is not a VM item"),
        ({"fabricName": ".."}, "fabricName"),
    ],
)
def test_an_answer_that_names_no_vm_item_fails_as_unexpected(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ArmProtocolError) as caught:
        resolve(resource_target(), "westeurope", status(**changes))

    assert caught.value.info.code == "UnexpectedBackupStatus"
    assert reason in caught.value.info.message


def test_odd_values_in_the_answer_count_as_absent() -> None:
    read = read_backup_status({"protectionStatus": 5, "vaultId": ["x"], "errorCode": "  ", "fabricName": {}})

    assert read == BackupStatus("Unknown", None, None, None, None, None, None)


# --- the rule of Phase.RESOLVE -------------------------------------------------------------


def resolving(**changes: Any) -> FollowUp:
    follow_up = FollowUp(request=None, phase=Phase.RESOLVE, requested_at=NOW, phase_started_at=NOW,
                         target=resource_target(), attempt=2, throttled=1)
    return follow_up.keeping_raw_message('{"resourceId": "…"}').advance(**changes)


def test_a_resolved_vm_goes_on_to_its_trigger_at_once() -> None:
    later = NOW + timedelta(minutes=3)
    decision = after_backup_status(resolving(), "westeurope", status(), later, make_settings())

    assert isinstance(decision, Proceed)
    next_step = decision.follow_up
    assert next_step.phase is Phase.TRIGGER
    assert next_step.request is not None and next_step.request.item == VM_ITEM
    assert next_step.target == resolving().target  # kept: the result names the VM too
    assert (next_step.requested_at, next_step.phase_started_at) == (NOW, later)
    assert (next_step.attempt, next_step.throttled, next_step.raw_message) == (0, 0, None)


def test_an_uncertain_trigger_stays_uncertain_through_resolution() -> None:
    decision = after_backup_status(resolving(trigger_uncertain_since=NOW), "westeurope", status(), NOW,
                                   make_settings())

    assert isinstance(decision, Proceed)
    assert decision.follow_up.trigger_uncertain_since == NOW


@pytest.mark.parametrize(
    "allowed",
    [{"ALLOWED_VAULTS": VAULT.upper()}, {"ALLOWED_VAULTS": f"{RG.upper()}/{VAULT}"},
     {"ALLOWED_VAULTS": f"other, {VAULT.lower()}"}, {"ALLOWED_SUBSCRIPTIONS": SUB.upper()}],
)
def test_allow_lists_admit_the_resolved_vault_whatever_the_case(allowed: dict[str, str]) -> None:
    decision = after_backup_status(resolving(), "westeurope", status(), NOW, make_settings(**allowed))

    assert isinstance(decision, Proceed)


@pytest.mark.parametrize(
    ("allowed", "vault_id", "target"),
    [
        ({"ALLOWED_VAULTS": "vault-prod"}, None, "vaultName"),
        ({"ALLOWED_VAULTS": f"other-rg/{VAULT}"}, None, "vaultName"),
        ({"ALLOWED_SUBSCRIPTIONS": SUB},
         f"/subscriptions/{OTHER_SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}",
         "subscriptionId"),
    ],
)
def test_a_resolved_vault_outside_the_allow_lists_is_rejected(
    allowed: dict[str, str], vault_id: str | None, target: str
) -> None:
    answer = status(vaultId=vault_id) if vault_id else status()

    decision = after_backup_status(resolving(), "westeurope", answer, NOW, make_settings(**allowed))

    assert isinstance(decision, Finish)
    assert decision.status is ResultStatus.REJECTED
    assert decision.error is not None and (decision.error.code, decision.error.target) == ("NotAllowed", target)
    assert decision.follow_up.request is not None  # the refused item is named in the result
    assert decision.follow_up.raw_message == '{"resourceId": "…"}'


def test_not_protected_ends_failed() -> None:
    answer = status(protectionStatus="NotProtected", vaultId=None)

    decision = after_backup_status(resolving(), "westeurope", answer, NOW, make_settings())

    assert isinstance(decision, Finish)
    assert decision.status is ResultStatus.FAILED
    assert decision.error is not None and decision.error.code == "NotProtected"
    assert decision.follow_up.last_error == decision.error
    assert decision.follow_up.request is None


def test_an_unexpected_answer_ends_failed() -> None:
    decision = after_backup_status(resolving(), "westeurope", status(protectedItemName="vm;../x"), NOW,
                                   make_settings())

    assert isinstance(decision, Finish)
    assert (decision.status, decision.error and decision.error.code) == (ResultStatus.FAILED, "UnexpectedBackupStatus")
