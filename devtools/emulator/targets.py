"""Finding a VM's backup item: Backup Status - Get and the VM's own GET, answered as ARM does.

Backup Status - Get (POST /subscriptions/{s}/providers/Microsoft.RecoveryServices/locations/{region}/backupStatus)
is shaped like GetBackupStatus.json: the type prefixes of the names in lower case and `Vaults` in the vault id.
Only vaults in the asked region protect a VM; a VM it does not know, or asked about in another region, is
`NotProtected` (the service looks at its registrations, not at the VM). The VM GET knows each VM item's VM, in
its vault's region, and the unprotected VMs the inventory lists.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from .errors import ArmError, bad_request, not_found
from .inventory import Inventory, Item
from .routes import Route
from .wire import Request, Response, json_response

# Compute api-versions served for the VM GET (the app pins one; clients of older SDKs use others).
COMPUTE_API_VERSIONS = (
    "2021-03-01", "2021-07-01", "2022-03-01", "2022-08-01", "2022-11-01", "2023-03-01", "2023-07-01", "2023-09-01",
    "2024-03-01", "2024-07-01", "2024-11-01",
)
INVALID_INPUT = "BMSUserErrorInvalidInput"


def backup_status(inventory: Inventory, request: Request, route: Route) -> Response:
    if not inventory.knows_subscription(route["subscription"]):
        raise _subscription_not_found(route["subscription"])
    resource_id, resource_type = _status_request(request.body)
    if resource_type.lower() != "vm":
        raise bad_request(INVALID_INPUT, f"resourceType '{resource_type}' is not emulated; only VM is.", "resourceType")
    region = route["location"]
    items = [
        item for item in inventory.items_protecting(resource_id)
        if item.vault.location.lower() == region.lower()
        and item.vault.subscription.lower() == route["subscription"].lower()
    ]
    if not items:
        return json_response(200, {
            "protectionStatus": "NotProtected",
            "errorMessage": f"The resource '{resource_id}' is not protected by any vault in region '{region}'.",
        })
    return json_response(200, _protected(items[0]))


def vm_get(inventory: Inventory, route: Route) -> Response:
    machine = inventory.virtual_machine(route["subscription"], route["resource_group"], route["vm"])
    vm_id = str(uuid.UUID(hashlib.sha256(machine.id.lower().encode()).hexdigest()[:32]))
    return json_response(200, {
        "name": machine.name,
        "id": machine.id,
        "type": "Microsoft.Compute/virtualMachines",
        "location": machine.location,
        "properties": {"vmId": vm_id, "provisioningState": "Succeeded",
                       "hardwareProfile": {"vmSize": "Standard_D2s_v3"}},
    })


def _status_request(body: bytes) -> tuple[str, str]:
    try:
        document = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("InvalidRequestContent", f"The request content could not be deserialized: {exc}") from exc
    if not isinstance(document, dict):
        raise bad_request("InvalidRequestContent", "The request content must be a JSON object.")
    fields = {str(key).lower(): value for key, value in document.items()}
    unknown = sorted(set(fields) - {"resourceid", "resourcetype"})
    if unknown:
        raise bad_request("InvalidRequestContent", f"Could not find member '{unknown[0]}' on the request.", unknown[0])
    resource_id, resource_type = fields.get("resourceid"), fields.get("resourcetype")
    if not isinstance(resource_id, str) or not resource_id:
        raise bad_request(INVALID_INPUT, "resourceId is required.", "resourceId")
    if not isinstance(resource_type, str) or not resource_type:
        raise bad_request(INVALID_INPUT, "resourceType is required.", "resourceType")
    return resource_id, resource_type


def _protected(item: Item) -> dict[str, Any]:
    vault = item.vault
    return {
        "protectionStatus": "Protected",
        "vaultId": vault.path().replace("/vaults/", "/Vaults/"),
        "fabricName": item.fabric,
        "containerName": _lower_prefix(item.container),
        "protectedItemName": _lower_prefix(item.name),
        "policyName": item.policy,
        "errorCode": "Success",
        "errorMessage": "",
    }


def _lower_prefix(name: str) -> str:
    """`IaasVMContainer;…` as the service spells it here: `iaasvmcontainer;…`."""
    prefix, separator, rest = name.partition(";")
    return prefix.lower() + separator + rest


def _subscription_not_found(subscription: str) -> ArmError:
    return not_found("SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
