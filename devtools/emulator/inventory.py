"""The emulated estate: subscriptions, resource groups, vaults and their protected items, loaded from JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .errors import ArmError, not_found

DEFAULT_INVENTORY = Path(__file__).with_name("inventory.json")
DEFAULT_LOCATION = "westeurope"


@dataclass(frozen=True)
class WorkloadInfo:
    item_prefix: str
    backup_management_type: str
    request_object_type: str
    job_type: str
    protected_item_type: str
    refused_backup_types: frozenset[str] = frozenset()
    tasks: tuple[str, ...] = ("Transfer data to vault",)


class Workload(Enum):
    """Each kind of protected item, recognised by the first `;` field of the item name as Azure spells it."""

    VM = WorkloadInfo(
        "VM", "AzureIaasVM", "IaasVMBackupRequest", "AzureIaaSVMJob", "Microsoft.Compute/virtualMachines",
        tasks=("Take Snapshot", "Transfer data to vault"),
    )
    FILE_SHARE = WorkloadInfo(
        "AzureFileShare", "AzureStorage", "AzureFileShareBackupRequest", "AzureStorageJob",
        "AzureFileShareProtectedItem", tasks=("Take Snapshot",),
    )
    SQL = WorkloadInfo(
        "SQLDataBase", "AzureWorkload", "AzureWorkloadBackupRequest", "AzureWorkloadJob", "AzureVmWorkloadSQLDatabase",
    )
    # az CLI refuses these on demand for HANA (custom_wl.py); the service does too.
    HANA = WorkloadInfo(
        "SAPHanaDatabase", "AzureWorkload", "AzureWorkloadBackupRequest", "AzureWorkloadJob",
        "AzureVmWorkloadSAPHanaDatabase", refused_backup_types=frozenset({"Log", "CopyOnlyFull", "Incremental"}),
    )
    ASE = WorkloadInfo(
        "SAPAseDatabase", "AzureWorkload", "AzureWorkloadBackupRequest", "AzureWorkloadJob",
        "AzureVmWorkloadSAPAseDatabase",
    )

    @property
    def info(self) -> WorkloadInfo:
        return self.value

    @classmethod
    def of_item(cls, item_name: str) -> Workload:
        prefix = item_name.split(";", 1)[0].lower()
        for workload in cls:
            if workload.info.item_prefix.lower() == prefix:
                return workload
        raise ValueError(f"cannot tell the workload of protected item {item_name!r}")


def arm_path(*segments: str) -> str:
    """Join names into a path, each one percent-encoded as a single segment; `;` stays literal as Azure writes it."""
    return "".join("/" + quote(s, safe=";") for s in segments)


@dataclass(frozen=True)
class Vault:
    subscription: str
    resource_group: str
    name: str
    location: str = DEFAULT_LOCATION

    def path(self, subscriptions: str = "subscriptions") -> str:
        return arm_path(
            subscriptions, self.subscription, "resourceGroups", self.resource_group,
            "providers", "Microsoft.RecoveryServices", "vaults", self.name,
        )


@dataclass(frozen=True)
class Item:
    """A protected item; `url_container`/`url_name`: how its operation URLs spell it (they may differ, as in Azure)."""

    vault: Vault
    fabric: str
    container: str
    name: str
    workload: Workload
    policy: str = "DefaultPolicy"
    url_container: str = ""
    url_name: str = ""
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def friendly_name(self) -> str:
        return self.name.rsplit(";", 1)[-1]

    @cached_property
    def id(self) -> str:
        return self.path()

    def path(self, subscriptions: str = "subscriptions", *, for_urls: bool = False) -> str:
        container = (self.url_container or self.container) if for_urls else self.container
        name = (self.url_name or self.name) if for_urls else self.name
        return self.vault.path(subscriptions) + arm_path(
            "backupFabrics", self.fabric, "protectionContainers", container, "protectedItems", name,
        )

    def answers_to(self, fabric: str, container: str, name: str) -> bool:
        if fabric.lower() != self.fabric.lower():
            return False
        spellings = {(self.container.lower(), self.name.lower())}
        spellings.add(((self.url_container or self.container).lower(), (self.url_name or self.name).lower()))
        return (container.lower(), name.lower()) in spellings


@dataclass(frozen=True)
class VirtualMachine:
    """A VM the emulated ARM knows: each VM item's own (in its vault's region), and any listed unprotected."""

    subscription: str
    resource_group: str
    name: str
    location: str = DEFAULT_LOCATION

    @property
    def id(self) -> str:
        return arm_path(
            "subscriptions", self.subscription, "resourceGroups", self.resource_group,
            "providers", "Microsoft.Compute", "virtualMachines", self.name,
        )


class Inventory:
    """Case-insensitive lookups that fail the way ARM does: subscription, then resource group, then resource."""

    def __init__(self, vaults: Mapping[Vault, list[Item]], machines: Iterable[VirtualMachine] = ()) -> None:
        self._vaults = {_vault_key(v): v for v in vaults}
        self._items = {_vault_key(v): list(items) for v, items in vaults.items()}
        self._subscriptions = {v.subscription.lower() for v in vaults}
        self._groups = {(v.subscription.lower(), v.resource_group.lower()) for v in vaults}
        self._protecting: dict[str, list[Item]] = {}
        for item in (item for items in vaults.values() for item in items):
            vm = protected_machine(item)
            if vm is not None:
                self._protecting.setdefault(vm.id.lower(), []).append(item)
        protected = [vm for items in self._protecting.values() if (vm := protected_machine(items[0])) is not None]
        # Listed machines win over the ones items imply: a VM listed elsewhere is one no vault there protects.
        self._machines = {_machine_key(vm): vm for vm in (*protected, *machines)}

    @classmethod
    def load(cls, path: Path | None = None) -> Inventory:
        return cls.from_dict(json.loads((path or DEFAULT_INVENTORY).read_text(encoding="utf-8")))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Inventory:
        vaults: dict[Vault, list[Item]] = {}
        machines: list[VirtualMachine] = []
        for sub, sub_data in data["subscriptions"].items():
            for rg, rg_data in sub_data["resource_groups"].items():
                for vault_name, vault_data in rg_data.get("vaults", {}).items():
                    vault = Vault(sub, rg, vault_name, str(vault_data.get("location", DEFAULT_LOCATION)))
                    vaults[vault] = [_item(vault, raw) for raw in vault_data.get("items", [])]
                for vm_name, vm_data in rg_data.get("virtual_machines", {}).items():
                    machines.append(VirtualMachine(sub, rg, vm_name, str(vm_data.get("location", DEFAULT_LOCATION))))
        return cls(vaults, machines)

    def vault(self, subscription: str, resource_group: str, name: str) -> Vault:
        if subscription.lower() not in self._subscriptions:
            raise not_found("SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
        if (subscription.lower(), resource_group.lower()) not in self._groups:
            raise not_found("ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")
        vault = self._vaults.get((subscription.lower(), resource_group.lower(), name.lower()))
        if vault is None:
            raise not_found(
                "ResourceNotFound",
                f"The Resource 'Microsoft.RecoveryServices/vaults/{name}' under resource group "
                f"'{resource_group}' was not found.",
            )
        return vault

    def item(self, vault: Vault, fabric: str, container: str, name: str) -> Item:
        for item in self._items[_vault_key(vault)]:
            if item.answers_to(fabric, container, name):
                return item
        raise _item_not_found(container, name)

    def items(self, vault: Vault) -> list[Item]:
        return list(self._items[_vault_key(vault)])

    def virtual_machine(self, subscription: str, resource_group: str, name: str) -> VirtualMachine:
        machine = self._machines.get((subscription.lower(), resource_group.lower(), name.lower()))
        if machine is not None:
            return machine
        known = self._machines.values()
        if subscription.lower() not in self._subscriptions | {vm.subscription.lower() for vm in known}:
            raise not_found("SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
        groups = self._groups | {(vm.subscription.lower(), vm.resource_group.lower()) for vm in known}
        if (subscription.lower(), resource_group.lower()) not in groups:
            raise not_found("ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")
        raise not_found(
            "ResourceNotFound",
            f"The Resource 'Microsoft.Compute/virtualMachines/{name}' under resource group '{resource_group}' "
            "was not found.",
        )

    def knows_subscription(self, subscription: str) -> bool:
        return subscription.lower() in self._subscriptions | {vm.subscription.lower() for vm in self._machines.values()}

    def items_protecting(self, resource_id: str) -> list[Item]:
        """The VM items whose VM has this id (compared case-insensitively), in any vault."""
        return list(self._protecting.get(resource_id.lower(), ()))

    def __iter__(self) -> Iterator[Item]:
        for items in self._items.values():
            yield from items


def _vault_key(vault: Vault) -> tuple[str, str, str]:
    return vault.subscription.lower(), vault.resource_group.lower(), vault.name.lower()


def _machine_key(machine: VirtualMachine) -> tuple[str, str, str]:
    return machine.subscription.lower(), machine.resource_group.lower(), machine.name.lower()


def protected_machine(item: Item) -> VirtualMachine | None:
    """The VM a VM item protects, named by its container (`IaasVMContainer;iaasvmcontainerv2;{rg};{vm}`)."""
    parts = item.container.split(";")
    if item.workload is not Workload.VM or len(parts) < 4:
        return None
    return VirtualMachine(item.vault.subscription, parts[-2], parts[-1], item.vault.location)


def _item_not_found(container: str, name: str) -> ArmError:
    return not_found(
        "ResourceNotFound",
        f"The protected item '{name}' in container '{container}' was not found in the vault.",
    )


def _item(vault: Vault, raw: Mapping[str, Any]) -> Item:
    name = str(raw["item"])
    return Item(
        vault=vault,
        fabric=str(raw.get("fabric", "Azure")),
        container=str(raw["container"]),
        name=name,
        workload=Workload.of_item(name),
        policy=str(raw.get("policy", "DefaultPolicy")),
        url_container=str(raw.get("url_container", "")),
        url_name=str(raw.get("url_item", "")),
        overrides=dict(raw.get("behaviour", {})),
    )
