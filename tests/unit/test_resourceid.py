"""shared.resourceid: ARM resource ids, every accepted and refused shape, and the VM they may name."""

from __future__ import annotations

import pytest

from shared.errors import RequestRejected
from shared.resourceid import ResourceId, VirtualMachineRef
from tests.unit.builders import SUB, vm_id

VM = vm_id()
PREFIX = f"/subscriptions/{SUB}/resourceGroups/testrg"


def refused(value: object, field_name: str = "resourceId") -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        VirtualMachineRef.parse(value, field_name)
    assert caught.value.field_name == field_name
    assert caught.value.info.code == "InvalidRequest"
    return caught.value


# --- VMs accepted --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelled",
    [
        VM,
        VM.lower(),  # ARM events spell "resourcegroups"
        VM.upper().replace(SUB.upper(), SUB),
        f"/subscriptions/{SUB}/resourcegroups/testrg/providers/microsoft.compute/virtualmachines/v1win2012r",
        f"  {VM}\n",
    ],
)
def test_a_vm_id_in_any_casing_is_one_vm(spelled: str) -> None:
    vm = VirtualMachineRef.parse(spelled)

    assert vm.subscription_id == SUB
    assert vm.resource_group.lower() == "testrg"
    assert vm.name.lower() == "v1win2012r"
    assert vm.id.lower() == VM.lower()
    assert "/resourceGroups/" in vm.id and "/providers/Microsoft.Compute/virtualMachines/" in vm.id


def test_the_subscription_id_is_kept_in_lower_case() -> None:
    vm = VirtualMachineRef.parse(vm_id(sub="AAAAAAAA-0000-0000-0000-00000000000A"))

    assert vm.subscription_id == "aaaaaaaa-0000-0000-0000-00000000000a"


@pytest.mark.parametrize(
    ("group", "name"),
    [
        ("rg", "a"),
        ("rg-app_01.(prod)", "vm-web.01_"),
        ("réseau", "vm1"),  # resource group names may hold letters of any script
        ("g" * 90, "v" * 64),
    ],
)
def test_names_azure_allows_are_accepted(group: str, name: str) -> None:
    vm = VirtualMachineRef.parse(vm_id(group=group, name=name))

    assert (vm.resource_group, vm.name) == (group, name)
    assert vm.label == f"{group}/{name}"


def test_the_path_is_encoded_segment_by_segment() -> None:
    vm = VirtualMachineRef.parse(vm_id(group="réseau(1)", name="vm1"))

    assert vm.path == (
        f"/subscriptions/{SUB}/resourceGroups/r%C3%A9seau%281%29/providers/Microsoft.Compute/virtualMachines/vm1"
    )


# --- VMs refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "must be a string"),
        (42, "must be a string"),
        (["x"], "must be a string"),
        ("", "must be an ARM resource id"),
        ("subscriptions/x", "must be an ARM resource id"),
        (f"https://management.azure.com{VM}", "must be an ARM resource id"),
        (VM + "/", "empty segments"),
        (VM.replace("/resourceGroups", "//resourceGroups"), "empty segments"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/../../other", "'.' or '..'"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/.", "'.' or '..'"),
        (f"{PREFIX}/../testrg/providers/Microsoft.Compute/virtualMachines/vm", "'.' or '..'"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/vm%2F..%2Fx", "'%'"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/vm?api-version=1", "'?'"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/vm#x", "'#'"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/vm\\x", "'\\\\'"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/vm\x00", "'\\x00'"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/vm\r\nHost: evil", "'\\n'"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/vm one", "the VM name"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/vmé", "the VM name"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/-vm", "the VM name"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/vm.", "the VM name"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/{'v' * 65}", "the VM name"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/vm\ud800", "Unicode"),
        (vm_id(sub="not-a-guid"), "the subscription must be a subscription GUID"),
        (vm_id(group="rg."), "the resource group"),
        (vm_id(group="g" * 91), "the resource group"),
        (f"/subscriptions/{SUB}/providers/Microsoft.Compute/virtualMachines/vm", "not a Microsoft.Compute"),
        (f"/subscriptions/{SUB}/resourceGroups", "no resource group"),
        (PREFIX, "not a Microsoft.Resources/resourceGroups"),
        (f"/subscriptions/{SUB}", "not a Microsoft.Resources/subscriptions"),
        (f"{PREFIX}/virtualMachines/vm", "is not a resource id"),
        (f"{PREFIX}/providers", "is not a resource id"),
        (f"{PREFIX}/providers/Microsoft.Compute", "names no resource under provider"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines", "is not a resource id"),
        (f"{PREFIX}/providers/Compute/virtualMachines/vm", "not a resource provider namespace"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtual-machines/vm", "is not a resource id"),
        (f"{PREFIX}/providers/Microsoft.Storage/storageAccounts/st1", "not a Microsoft.Storage/storageAccounts"),
        (f"{VM}/extensions/VMSnapshot", "not a Microsoft.Compute/virtualMachines/extensions"),
        (f"{VM}/providers/Microsoft.Authorization/locks/l1", "not a Microsoft.Authorization/locks"),
        (f"{PREFIX}/providers/Microsoft.RecoveryServices/vaults/v/backupFabrics/Azure/protectionContainers/"
         "IaasVMContainer;iaasvmcontainerv2;rg;vm/protectedItems/VM;iaasvmcontainerv2;rg;vm",
         "not a Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems"),
        (f"{PREFIX}/providers/Microsoft.Compute/virtualMachines/vm/providers/Microsoft.Compute/virtualMachines/x",
         "not a Microsoft.Compute/virtualMachines"),
        ("/subscriptions/" + "a/" * 1100 + "b", "at most 2048 characters"),
    ],
)
def test_anything_but_a_well_formed_vm_id_is_refused(value: object, reason: str) -> None:
    assert reason in refused(value).reason


def test_the_refusal_names_the_field_it_was_read_from() -> None:
    assert refused("nope", "subject").info.target == "subject"


# --- other resources (what ARM events name) ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "resource_type", "name"),
    [
        (f"/subscriptions/{SUB}", "Microsoft.Resources/subscriptions", SUB),
        (PREFIX, "Microsoft.Resources/resourceGroups", "testrg"),
        (VM, "Microsoft.Compute/virtualMachines", "v1win2012r"),
        (f"{VM}/extensions/VMSnapshot", "Microsoft.Compute/virtualMachines/extensions", "VMSnapshot"),
        (f"{VM}/providers/Microsoft.Authorization/locks/l1", "Microsoft.Authorization/locks", "l1"),
        (f"/subscriptions/{SUB}/providers/Microsoft.RecoveryServices/locations/westeurope",
         "Microsoft.RecoveryServices/locations", "westeurope"),
    ],
)
def test_any_resource_id_parses_to_its_type_and_name(value: str, resource_type: str, name: str) -> None:
    resource = ResourceId.parse(value, "subject")

    assert resource.resource_type == resource_type
    assert resource.name == name
    assert resource.is_virtual_machine is (value == VM)


def test_is_under_sees_every_provider_of_the_id() -> None:
    scoped = ResourceId.parse(f"{VM}/providers/microsoft.recoveryservices/backupProtectedItem/x", "subject")

    assert scoped.is_under("Microsoft.RecoveryServices")
    assert scoped.is_under("Microsoft.Compute")
    assert not scoped.is_under("Microsoft.Storage")
    assert not ResourceId.parse(PREFIX, "subject").is_under("Microsoft.Resources")


def test_is_a_means_the_resource_itself_in_a_resource_group() -> None:
    vault = ResourceId.parse(f"{PREFIX}/providers/Microsoft.RecoveryServices/Vaults/v1", "vaultId")

    assert vault.is_a("microsoft.recoveryservices/vaults")
    assert not ResourceId.parse(f"{VM}/extensions/x", "s").is_a("Microsoft.Compute/virtualMachines")
    at_subscription = ResourceId.parse(f"/subscriptions/{SUB}/providers/Microsoft.RecoveryServices/vaults/v", "s")
    assert not at_subscription.is_a("Microsoft.RecoveryServices/vaults")
