"""A large emulated estate: many vaults of many VMs, so that every request of a run has an item of its own.

The emulator refuses a second backup of a busy item and counts on-demand backups per item and day;
a load test of thousands of requests therefore needs thousands of items. ``Estate.write`` makes
the inventory file for ``python -m devtools.emulator --inventory``; ``Estate.request`` the request
message for item ``n``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["OTHER_SUBSCRIPTION", "SUBSCRIPTION", "Estate", "ItemName"]

SUBSCRIPTION = "5ba7e1f0-0b5e-4c1a-9d4e-00000000b0b1"
OTHER_SUBSCRIPTION = "5ba7e1f0-0b5e-4c1a-9d4e-00000000e71c"
"""A second subscription the emulator knows, outside the app's allow-list in the tests that set one."""
RESOURCE_GROUP = "rg-bench"
_ITEMS_PER_VAULT = 100  # the emulator finds an item by scanning its vault: keep vaults small


@dataclass(frozen=True)
class ItemName:
    subscription: str
    resource_group: str
    vault: str
    container: str
    item: str

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
            f"Microsoft.RecoveryServices/vaults/{self.vault}/backupFabrics/Azure/protectionContainers/"
            f"{self.container}/protectedItems/{self.item}"
        )


@dataclass(frozen=True)
class Estate:
    items: int
    subscription: str = SUBSCRIPTION

    @property
    def vaults(self) -> int:
        return -(-self.items // _ITEMS_PER_VAULT)

    def item(self, n: int) -> ItemName:
        if not 0 <= n < self.items:
            raise IndexError(f"item {n} is outside the estate of {self.items}")
        vault, vm = divmod(n, _ITEMS_PER_VAULT)
        name = f"vm-{vault:03d}-{vm:03d}"
        return ItemName(
            self.subscription, RESOURCE_GROUP, f"vault-{vault:03d}",
            f"IaasVMContainer;iaasvmcontainerv2;{RESOURCE_GROUP};{name}",
            f"VM;iaasvmcontainerv2;{RESOURCE_GROUP};{name}",
        )

    def request(self, n: int, correlation_id: str) -> dict[str, Any]:
        """The request message for item ``n``: names, no properties (the app fills in the defaults)."""
        item = self.item(n)
        return {
            "subscriptionId": item.subscription,
            "resourceGroupName": item.resource_group,
            "vaultName": item.vault,
            "containerName": item.container,
            "protectedItemName": item.item,
            "correlationId": correlation_id,
        }

    def inventory(self) -> dict[str, Any]:
        vaults: dict[str, Any] = {}
        for n in range(self.items):
            item = self.item(n)
            vaults.setdefault(item.vault, {"items": []})["items"].append(
                {"container": item.container, "item": item.item}
            )
        other_vm = "VM;iaasvmcontainerv2;rg-other;vm-other"
        other = {"items": [{"container": "IaasVMContainer;iaasvmcontainerv2;rg-other;vm-other", "item": other_vm}]}
        return {
            "subscriptions": {
                self.subscription: {"resource_groups": {RESOURCE_GROUP: {"vaults": vaults}}},
                OTHER_SUBSCRIPTION: {"resource_groups": {"rg-other": {"vaults": {"vault-other": other}}}},
            }
        }

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.inventory()), encoding="utf-8")
        return path
