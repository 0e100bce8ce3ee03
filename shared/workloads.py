"""Per-workload rules of an on-demand backup: request type, backup types, default expiry.

Pure functions of their arguments (the clock is passed in). The defaults follow the az CLI
(azure-cli backup module: ``custom.py`` for VMs and file shares, ``custom_wl.py`` for
workloads): VM and file share now + 30 days; workload Full now + 45 days, CopyOnlyFull
now + 30 days; Differential, Log and Incremental keep the policy's retention, so they carry
no expiry; SAP HANA refuses Log, CopyOnlyFull and Incremental on demand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from shared.errors import RequestRejected

__all__ = ["BackupType", "Workload", "build_properties"]

MAX_RETENTION_DAYS = 36135  # 99 years, the longest on-demand retention Azure Backup offers


class Workload(Enum):
    IAAS_VM = "VM"
    FILE_SHARE = "AzureFileShare"
    SQL_DATABASE = "SQLDataBase"
    SAP_HANA_DATABASE = "SAPHanaDatabase"
    SAP_ASE_DATABASE = "SAPAseDatabase"

    @property
    def object_type(self) -> str:
        return _OBJECT_TYPES[self]

    @property
    def backup_management_type(self) -> str:
        """How jobs of this workload name their kind (``backupManagementType``)."""
        return _MANAGEMENT_TYPES[self]

    @property
    def is_database(self) -> bool:
        return _OBJECT_TYPES[self] == "AzureWorkloadBackupRequest"

    @classmethod
    def of_item(cls, item_name: str) -> Workload | None:
        """The workload an item name announces by its first ';' part, if it is one we know."""
        prefix = item_name.split(";", 1)[0].lower()
        return next((workload for workload in cls if workload.value.lower() == prefix), None)


_OBJECT_TYPES = {
    Workload.IAAS_VM: "IaasVMBackupRequest",
    Workload.FILE_SHARE: "AzureFileShareBackupRequest",
    Workload.SQL_DATABASE: "AzureWorkloadBackupRequest",
    Workload.SAP_HANA_DATABASE: "AzureWorkloadBackupRequest",
    Workload.SAP_ASE_DATABASE: "AzureWorkloadBackupRequest",
}


_MANAGEMENT_TYPES = {
    Workload.IAAS_VM: "AzureIaasVM",
    Workload.FILE_SHARE: "AzureStorage",
    Workload.SQL_DATABASE: "AzureWorkload",
    Workload.SAP_HANA_DATABASE: "AzureWorkload",
    Workload.SAP_ASE_DATABASE: "AzureWorkload",
}


class BackupType(Enum):
    FULL = "Full"
    DIFFERENTIAL = "Differential"
    LOG = "Log"
    COPY_ONLY_FULL = "CopyOnlyFull"
    INCREMENTAL = "Incremental"

    @classmethod
    def parse(cls, value: object) -> BackupType:
        if isinstance(value, str):
            for backup_type in cls:
                if backup_type.value.lower() == value.lower():
                    return backup_type
        allowed = ", ".join(backup_type.value for backup_type in cls)
        raise RequestRejected("properties.backupType", f"must be one of {allowed}, not {value!r}")


_DEFAULT_EXPIRY = {
    Workload.IAAS_VM: timedelta(days=30),
    Workload.FILE_SHARE: timedelta(days=30),
}
_WORKLOAD_EXPIRY = {BackupType.FULL: timedelta(days=45), BackupType.COPY_ONLY_FULL: timedelta(days=30)}
_HANA_REFUSES = {BackupType.LOG, BackupType.COPY_ONLY_FULL, BackupType.INCREMENTAL}
_PROPERTY_KEYS = {
    False: {"objectType", "recoveryPointExpiryTimeInUTC"},
    True: {"objectType", "recoveryPointExpiryTimeInUTC", "backupType", "enableCompression"},
}


@dataclass(frozen=True)
class Expiry:
    """What the request said about expiry: an instant, a number of days, or nothing."""

    instant: datetime | None = None
    retention_days: int | None = None


def build_properties(
    item_name: str, given: Mapping[str, Any], expiry: Expiry, now: datetime
) -> dict[str, Any]:
    """The REST body's ``properties`` for this item: given values checked, the rest defaulted."""
    workload = _workload(item_name, given.get("objectType"))
    unknown = sorted(set(given) - _PROPERTY_KEYS[workload.is_database])
    if unknown:
        allowed = ", ".join(sorted(_PROPERTY_KEYS[workload.is_database]))
        raise RequestRejected(f"properties.{unknown[0]}", f"is not a property of {workload.object_type} ({allowed})")
    properties: dict[str, Any] = {"objectType": workload.object_type}
    default_expiry = _DEFAULT_EXPIRY.get(workload)
    if workload.is_database:
        backup_type = _database_backup_type(workload, given.get("backupType"))
        properties["backupType"] = backup_type.value
        default_expiry = _WORKLOAD_EXPIRY.get(backup_type)
        if "enableCompression" in given:
            if not isinstance(given["enableCompression"], bool):
                raise RequestRejected("properties.enableCompression", "must be true or false")
            properties["enableCompression"] = given["enableCompression"]
        if default_expiry is None and (expiry.instant or expiry.retention_days):
            raise RequestRejected(
                "properties.recoveryPointExpiryTimeInUTC",
                f"a {backup_type.value} backup keeps the policy's retention; give no expiry",
            )
    instant = _expiry_instant(expiry, now, default_expiry)
    if instant is not None:
        properties["recoveryPointExpiryTimeInUTC"] = instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    return properties


def _workload(item_name: str, object_type: object) -> Workload:
    workload = Workload.of_item(item_name)
    if object_type is not None and not isinstance(object_type, str):
        raise RequestRejected("properties.objectType", "must be a string")
    if workload is None:
        known = ", ".join(f"{workload.value};…" for workload in Workload)
        raise RequestRejected(
            "protectedItemName", f"names no workload this app can back up on demand (expected {known})"
        )
    if object_type is not None and object_type.lower() != workload.object_type.lower():
        kind = item_name.split(";", 1)[0]
        raise RequestRejected("properties.objectType", f"{kind} items take {workload.object_type}, not {object_type}")
    return workload


def _database_backup_type(workload: Workload, value: object) -> BackupType:
    if value is None:
        raise RequestRejected("properties.backupType", "is required for database workloads")
    backup_type = BackupType.parse(value)
    if workload is Workload.SAP_HANA_DATABASE and backup_type in _HANA_REFUSES:
        raise RequestRejected(
            "properties.backupType", f"SAP HANA does not take an on-demand {backup_type.value} backup"
        )
    return backup_type


def _expiry_instant(expiry: Expiry, now: datetime, default: timedelta | None) -> datetime | None:
    if expiry.instant is not None:
        if expiry.instant <= now:
            raise RequestRejected("properties.recoveryPointExpiryTimeInUTC", "is in the past")
        return expiry.instant
    if expiry.retention_days is not None:
        return now + timedelta(days=expiry.retention_days)
    return None if default is None else now + default
