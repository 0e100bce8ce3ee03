"""Requests that name their VM rather than its vault item: the ``resourceId`` form and its resolution.

``{"resourceId": "/subscriptions/…/virtualMachines/vm1", "location"?, "properties"?, "retentionDays"?,
"correlationId"?}`` is checked here as fully as a request by names (the id, the subscription
allow-list, the properties and defaults of a VM backup) before anything is sent. Backup Status -
Get (what ``az backup protection check-vm`` calls) then says which vault and item protect the VM,
and ``resolve`` turns the two into the ``BackupRequest`` every later step works on. Pure
functions: answers in, values or errors out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.armid import ProtectedItemRef
from shared.errors import ArmProtocolError, ErrorInfo, RequestRejected, ResourceNotProtected
from shared.messages import BackupRequest, correlation_id_of, is_correlation_id, request_properties
from shared.resourceid import ResourceId, VirtualMachineRef
from shared.settings import Settings
from shared.workloads import Workload

__all__ = [
    "NOT_PROTECTED", "BackupStatus", "ResourceTarget", "check_subscription_allowed", "is_resource_form",
    "parse_location", "parse_target", "read_backup_status", "read_location", "resolve",
]

NOT_PROTECTED = "NotProtected"
_FIELDS = ("resourceId", "location", "properties", "retentionDays", "correlationId")
_ITEM_FIELDS = frozenset({
    "subscriptionId", "resourceGroupName", "vaultName", "fabricName", "containerName", "protectedItemName",
    "protectedItemId",
})
_LOCATION = re.compile(r"^[a-z][a-z0-9]{1,63}$")
_VAULTS = "Microsoft.RecoveryServices/vaults"
_UNPROTECTED_STATES = frozenset({"notprotected", "invalid"})
# Backup Status - Get spells the type prefixes in lower case ("iaasvmcontainer;…", "vm;…"); the item
# is kept as Azure spells it elsewhere, so one item reads the same however it was asked for.
_CONTAINER_PREFIX = "IaasVMContainer"


@dataclass(frozen=True)
class ResourceTarget:
    """A request by resource id, checked; ``properties`` are the trigger's, defaults and expiry settled."""

    resource: VirtualMachineRef
    location: str | None
    properties: Mapping[str, Any] = field(hash=False)
    correlation_id: str

    @property
    def label(self) -> str:
        return self.resource.label

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"resourceId": self.resource.id}
        if self.location is not None:
            document["location"] = self.location
        document.update(properties=dict(self.properties), correlationId=self.correlation_id)
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ResourceTarget:
        """A target this app wrote earlier (checked again: the status queue is not trusted)."""
        properties, correlation_id = document.get("properties"), document.get("correlationId")
        if not isinstance(properties, dict) or not isinstance(correlation_id, str) or not is_correlation_id(
            correlation_id
        ):
            raise RequestRejected("target", "properties and correlationId are required")
        return cls(
            resource=VirtualMachineRef.parse(document.get("resourceId")),
            location=parse_location(document.get("location")),
            properties=properties,
            correlation_id=correlation_id,
        )


@dataclass(frozen=True)
class BackupStatus:
    """A Backup Status - Get answer (GetBackupStatus.json): where the resource is protected, if anywhere."""

    protection_status: str
    vault_id: str | None
    fabric_name: str | None
    container_name: str | None
    protected_item_name: str | None
    error_code: str | None
    error_message: str | None


def is_resource_form(document: Mapping[str, Any]) -> bool:
    return "resourceId" in document


def parse_target(
    document: Mapping[str, Any], *, settings: Settings, now: datetime, fallback_correlation_id: str
) -> ResourceTarget:
    """The request by resource id in ``document``, checked; ``RequestRejected`` names what is wrong."""
    for key in sorted(set(document) - set(_FIELDS)):
        if key in _ITEM_FIELDS:
            raise RequestRejected(key, "give either resourceId or the item (names or protectedItemId), not both")
        raise RequestRejected(key, f"is not a field of a request by resourceId ({', '.join(_FIELDS)})")
    resource = VirtualMachineRef.parse(document.get("resourceId"))
    check_subscription_allowed(resource, settings)
    return ResourceTarget(
        resource=resource,
        location=parse_location(document.get("location")),
        # A VM id resolves to a VM item: its rules and defaults apply before the item's name is known.
        properties=request_properties(Workload.IAAS_VM.value, document, now),
        correlation_id=correlation_id_of(document, fallback_correlation_id),
    )


def check_subscription_allowed(resource: VirtualMachineRef, settings: Settings) -> None:
    """``RequestRejected`` (NotAllowed) unless ALLOWED_SUBSCRIPTIONS admits the resource's subscription."""
    if settings.allowed_subscriptions and resource.subscription_id not in settings.allowed_subscriptions:
        raise RequestRejected(
            "resourceId", f"subscription {resource.subscription_id} is not in ALLOWED_SUBSCRIPTIONS", code="NotAllowed"
        )


def parse_location(value: object, field_name: str = "location") -> str | None:
    """An Azure region's name (``westeurope``), lower-cased; None when none was given."""
    if value is None:
        return None
    location = _region(value)
    if location is None:
        raise RequestRejected(field_name, "must be an Azure region name such as westeurope (letters and digits)")
    return location


def read_location(body: Mapping[str, Any]) -> str | None:
    """The region a resource's GET names in ``location``, or None when it names none usable."""
    return _region(body.get("location"))


def _region(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    name = value.strip().lower()
    return name if _LOCATION.match(name) else None


def read_backup_status(body: Mapping[str, Any]) -> BackupStatus:
    def text(key: str) -> str | None:
        value = body.get(key)
        return value.strip() if isinstance(value, str) and value.strip() else None

    return BackupStatus(
        protection_status=text("protectionStatus") or "Unknown",
        vault_id=text("vaultId"),
        fabric_name=text("fabricName"),
        container_name=text("containerName"),
        protected_item_name=text("protectedItemName"),
        error_code=text("errorCode"),
        error_message=text("errorMessage"),
    )


def resolve(target: ResourceTarget, location: str, status: BackupStatus) -> BackupRequest:
    """The backup request for the item that protects ``target``'s VM.

    ``ResourceNotProtected`` when no vault protects it; ``ArmProtocolError`` when the answer names
    something that is not a VM item of a vault (names are checked as strictly as a producer's).
    The allow-lists are the caller's to check on the result: it is a request like any other.
    """
    if status.vault_id is None or status.protection_status.lower() in _UNPROTECTED_STATES:
        raise ResourceNotProtected(_not_protected(target, location, status))
    try:
        vault = ResourceId.parse(status.vault_id, "vaultId")
        if not vault.is_a(_VAULTS):
            raise RequestRejected("vaultId", f"names a {vault.resource_type}, not a Recovery Services vault")
        item = ProtectedItemRef.of(
            vault.subscription_id, vault.resource_group, vault.name, status.fabric_name or "Azure",
            _spelled(status.container_name, _CONTAINER_PREFIX),
            _spelled(status.protected_item_name, Workload.IAAS_VM.value),
        )
    except RequestRejected as exc:
        raise _unexpected(f"{exc.field_name}: {exc.reason}") from None
    if Workload.of_item(item.item) is not Workload.IAAS_VM:
        raise _unexpected(f"protectedItemName: {item.item!r} is not a VM item")
    return BackupRequest(item=item, properties=target.properties, correlation_id=target.correlation_id)


def _spelled(name: str | None, prefix: str) -> str | None:
    """``name`` with its first ';' part spelled ``prefix`` when it is that part in another case."""
    if name is None or name.split(";", 1)[0].lower() != prefix.lower():
        return name
    return prefix + name[len(prefix):]


def _not_protected(target: ResourceTarget, location: str, status: BackupStatus) -> ErrorInfo:
    # Beside errorCode "Success" the message is a placeholder (GetBackupStatus.json says "ErrorMessage").
    succeeded = status.error_code is not None and status.error_code.lower() == "success"
    message = (None if succeeded else status.error_message) or (
        f"{target.resource.id} is not protected by a Recovery Services vault in {location}"
        f" (protectionStatus {status.protection_status})"
    )
    coded = status.error_code is not None and not succeeded
    details = ({"code": status.error_code, "message": status.error_message or ""},) if coded else ()
    return ErrorInfo(NOT_PROTECTED, message, target="resourceId", details=details)


def _unexpected(reason: str) -> ArmProtocolError:
    return ArmProtocolError(ErrorInfo("UnexpectedBackupStatus", f"Backup Status - Get answered {reason}"))
