"""Validation of the trigger's body (BackupRequestResource) against the protected item's workload.

Property names match case-insensitively and enum values too, as the service's JSON reader does; anything the
schema does not define is refused, so a typo in a producer's message surfaces instead of being ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import bad_request
from .inventory import Item, Workload

INVALID_CONTENT = "InvalidRequestContent"
INVALID_INPUT = "BMSUserErrorInvalidInput"
BACKUP_TYPES = ("Full", "Differential", "Log", "CopyOnlyFull", "Incremental")
_RESOURCE_KEYS = ("properties", "eTag", "location", "tags", "id", "name", "type")
_REQUEST_KEYS = {
    "IaasVMBackupRequest": ("objectType", "recoveryPointExpiryTimeInUTC"),
    "AzureFileShareBackupRequest": ("objectType", "recoveryPointExpiryTimeInUTC"),
    "AzureWorkloadBackupRequest": ("objectType", "recoveryPointExpiryTimeInUTC", "backupType", "enableCompression"),
}


@dataclass(frozen=True)
class BackupRequest:
    object_type: str
    expiry: datetime | None
    backup_type: str | None


def _canonical_keys(obj: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    by_lower = {name.lower(): name for name in allowed}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = by_lower.get(key.lower())
        if name is None:
            target = f"{where}.{key}" if where else key
            raise bad_request(INVALID_CONTENT, f"Could not find member '{key}' on the request object.", target)
        out[name] = value
    return out


def _choice(value: object, choices: tuple[str, ...]) -> str | None:
    if isinstance(value, str):
        return next((c for c in choices if c.lower() == value.lower()), None)
    return None


def parse_backup_request(body: bytes, item: Item, now: datetime) -> BackupRequest:
    """The request as understood, or the 400 CloudError the service answers (with `target` naming the property).

    `now` is real UTC time, not the emulated clock: callers compute expiry instants from their own clock, and the
    emulated one runs ahead of it (at scale 3600, 30 days pass in 12 minutes).
    """
    try:
        resource = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        message = f"The request content was invalid and could not be deserialized: {exc}"
        raise bad_request(INVALID_CONTENT, message) from exc
    if not isinstance(resource, dict):
        raise bad_request(INVALID_CONTENT, "The request content must be a JSON object with 'properties'.")
    resource = _canonical_keys(resource, _RESOURCE_KEYS, "")
    props = resource.get("properties")
    if not isinstance(props, dict):
        raise bad_request(INVALID_INPUT, "The backup request needs a 'properties' object.", "properties")
    object_type = _choice(_lookup(props, "objectType"), tuple(_REQUEST_KEYS))
    if object_type is None:
        raise bad_request(
            INVALID_CONTENT,
            f"properties.objectType must be one of {', '.join(_REQUEST_KEYS)}.",
            "properties.objectType",
        )
    props = _canonical_keys(props, _REQUEST_KEYS[object_type], "properties")
    info = item.workload.info
    if object_type != info.request_object_type:
        raise bad_request(
            INVALID_INPUT,
            f"{object_type} does not apply to item '{item.name}'; its workload takes {info.request_object_type}.",
            "properties.objectType",
        )
    expiry = _expiry(props.get("recoveryPointExpiryTimeInUTC"), now)
    backup_type = _backup_type(props, item.workload)
    if "enableCompression" in props and not isinstance(props["enableCompression"], bool):
        raise bad_request(INVALID_CONTENT, "enableCompression must be a boolean.", "properties.enableCompression")
    return BackupRequest(object_type, expiry, backup_type)


def _lookup(obj: Mapping[str, Any], name: str) -> Any:
    return next((v for k, v in obj.items() if k.lower() == name.lower()), None)


def _expiry(value: object, now: datetime) -> datetime | None:
    target = "properties.recoveryPointExpiryTimeInUTC"
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(INVALID_CONTENT, "recoveryPointExpiryTimeInUTC must be a date-time string.", target)
    try:
        expiry = datetime.fromisoformat(value)
    except ValueError as exc:
        message = f"recoveryPointExpiryTimeInUTC is not a date-time: {value!r}."
        raise bad_request(INVALID_CONTENT, message, target) from exc
    expiry = expiry if expiry.tzinfo else expiry.replace(tzinfo=UTC)
    if expiry <= now:
        raise bad_request(
            "UserErrorInvalidRecoveryPointExpiryTime",
            f"The recovery point expiry time {value} is in the past; it must be in the future.",
            target,
        )
    return expiry


def _backup_type(props: Mapping[str, Any], workload: Workload) -> str | None:
    target = "properties.backupType"
    if workload.info.request_object_type != "AzureWorkloadBackupRequest":
        return None
    raw = props.get("backupType")
    if raw is None:
        raise bad_request(INVALID_INPUT, "backupType is required for workload backups.", target)
    backup_type = _choice(raw, BACKUP_TYPES)
    if backup_type is None:
        raise bad_request(INVALID_CONTENT, f"backupType must be one of {', '.join(BACKUP_TYPES)}.", target)
    if backup_type in workload.info.refused_backup_types:
        raise bad_request(INVALID_INPUT, f"{backup_type} backups cannot be taken on demand for this workload.", target)
    return backup_type
